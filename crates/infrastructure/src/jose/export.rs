//! Keys to JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037): the reverse of
//! [`SigningKey::from_jwk`](super::SigningKey::from_jwk) and
//! [`VerificationKey::from_jwk`](super::VerificationKey::from_jwk).
//!
//! Every JWK written carries `kty` (and `crv`), `kid` when the key has one,
//! `use: "sig"` and `alg`, then the key members in the minimal base64url
//! form RFC 7518 asks for. Private JWKs are returned as [`PrivateJwk`], which
//! never prints its text and wipes it from memory when dropped.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use zeroize::{Zeroize, Zeroizing};

use super::algorithm::JwsAlgorithm;
use super::der;
use super::error::KeyError;

/// A private JWK's JSON text: key material in the clear.
///
/// Made by [`SigningKey::to_private_jwk`](super::SigningKey::to_private_jwk)
/// and read back by [`SigningKey::from_jwk`](super::SigningKey::from_jwk).
/// `Debug` shows the `kid` and algorithm only, there is no `Display`, and
/// the text is wiped from memory when the value is dropped.
pub struct PrivateJwk {
    kid: Box<str>,
    alg: JwsAlgorithm,
    json: Zeroizing<String>,
}

impl PrivateJwk {
    /// The key id the JWK carries.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm the JWK is for (its `alg` member).
    #[must_use]
    pub fn algorithm(&self) -> JwsAlgorithm {
        self.alg
    }

    /// The JWK as JSON text.
    ///
    /// **Security warning:** this is the private key (for HS256, the shared
    /// secret). Write it only where a private key belongs, never to a log.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.json
    }
}

impl fmt::Debug for PrivateJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateJwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("json", &format_args!("**redacted**"))
            .finish()
    }
}

/// The public members of an asymmetric key, base64url-encoded.
pub(crate) enum PublicMembers {
    Rsa { n: String, e: String },
    Ec { x: String, y: String },
    Okp { x: String },
}

/// The private members of a key, base64url-encoded and wiped when dropped.
pub(crate) enum PrivateMembers {
    Oct {
        k: Zeroizing<String>,
    },
    Rsa {
        d: Zeroizing<String>,
        p: Zeroizing<String>,
        q: Zeroizing<String>,
        dp: Zeroizing<String>,
        dq: Zeroizing<String>,
        qi: Zeroizing<String>,
    },
    /// EC `d` or OKP `d` (the seed).
    Scalar {
        d: Zeroizing<String>,
    },
}

/// A JWK's members as name and value, serialized as a JSON object in the
/// order given.
struct JwkOut<'a>(Vec<(&'static str, &'a str)>);

impl Serialize for JwkOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().copied())
    }
}

/// `kty` and `crv` for an algorithm's keys.
fn key_type(alg: JwsAlgorithm) -> (&'static str, Option<&'static str>) {
    match alg {
        JwsAlgorithm::Hs256 => ("oct", None),
        JwsAlgorithm::Rs256 => ("RSA", None),
        JwsAlgorithm::Es256 => ("EC", Some("P-256")),
        JwsAlgorithm::EdDsa => ("OKP", Some("Ed25519")),
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Base64url into a buffer sized up front, so no copy of a secret is left
/// behind by a reallocation.
pub(crate) fn b64_secret(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(3) * 4));
    URL_SAFE_NO_PAD.encode_string(bytes, &mut out);
    out
}

/// Why an HS256 key has no public JWK.
pub(crate) const HMAC_HAS_NO_PUBLIC_PART: &str =
    "an HMAC key has no public part; export it from its SigningKey";

const NOT_EXPORTABLE_SPKI: &str = "the crypto library's public key encoding was not understood";

/// The public members of `alg`'s key from its X.509 `SubjectPublicKeyInfo`.
pub(crate) fn public_members(alg: JwsAlgorithm, spki: &[u8]) -> Result<PublicMembers, KeyError> {
    let key = der::spki_key(spki).ok_or(KeyError::NotExportable(NOT_EXPORTABLE_SPKI))?;
    match alg {
        JwsAlgorithm::Rs256 => {
            let (n, e) =
                der::rsa_public(key).ok_or(KeyError::NotExportable(NOT_EXPORTABLE_SPKI))?;
            Ok(PublicMembers::Rsa {
                n: b64(n),
                e: b64(e),
            })
        }
        JwsAlgorithm::Es256 => match key {
            [0x04, point @ ..] if point.len() == 64 => {
                let (x, y) = point.split_at(32);
                Ok(PublicMembers::Ec {
                    x: b64(x),
                    y: b64(y),
                })
            }
            _ => Err(KeyError::NotExportable(
                "the P-256 public key is not an uncompressed point",
            )),
        },
        JwsAlgorithm::EdDsa if key.len() == 32 => Ok(PublicMembers::Okp { x: b64(key) }),
        JwsAlgorithm::EdDsa => Err(KeyError::NotExportable(NOT_EXPORTABLE_SPKI)),
        JwsAlgorithm::Hs256 => Err(KeyError::NotExportable(HMAC_HAS_NO_PUBLIC_PART)),
    }
}

/// The private members of an RSA key from its PKCS#8 encoding, with its
/// public members.
pub(crate) fn rsa_members(pkcs8: &[u8]) -> Result<(PublicMembers, PrivateMembers), KeyError> {
    let parts = der::pkcs8_rsa(pkcs8).ok_or(KeyError::NotExportable(
        "the RSA private key encoding was not understood (multi-prime keys are not exported)",
    ))?;
    Ok((
        PublicMembers::Rsa {
            n: b64(parts.n),
            e: b64(parts.e),
        },
        PrivateMembers::Rsa {
            d: b64_secret(parts.d),
            p: b64_secret(parts.p),
            q: b64_secret(parts.q),
            dp: b64_secret(parts.dp),
            dq: b64_secret(parts.dq),
            qi: b64_secret(parts.qi),
        },
    ))
}

/// A public JWK.
pub(crate) fn public_jwk(
    alg: JwsAlgorithm,
    kid: Option<&str>,
    public: &PublicMembers,
) -> Result<String, KeyError> {
    let json = write(alg, kid, Some(public), None)?;
    Ok(json.as_str().to_owned())
}

/// A private JWK.
pub(crate) fn private_jwk(
    alg: JwsAlgorithm,
    kid: &str,
    public: Option<&PublicMembers>,
    private: &PrivateMembers,
) -> Result<PrivateJwk, KeyError> {
    Ok(PrivateJwk {
        kid: kid.into(),
        alg,
        json: write(alg, Some(kid), public, Some(private))?,
    })
}

/// A JWK set (`{"keys":[...]}`) of JWKs already written.
pub(crate) fn jwk_set<'a>(jwks: impl IntoIterator<Item = &'a str>) -> String {
    let mut set = String::from(r#"{"keys":["#);
    for (i, jwk) in jwks.into_iter().enumerate() {
        if i > 0 {
            set.push(',');
        }
        set.push_str(jwk);
    }
    set.push_str("]}");
    set
}

fn write(
    alg: JwsAlgorithm,
    kid: Option<&str>,
    public: Option<&PublicMembers>,
    private: Option<&PrivateMembers>,
) -> Result<Zeroizing<String>, KeyError> {
    let (kty, crv) = key_type(alg);
    let mut members = Vec::with_capacity(16);
    members.push(("kty", kty));
    members.extend(crv.map(|crv| ("crv", crv)));
    members.extend(kid.map(|kid| ("kid", kid)));
    members.extend([("use", "sig"), ("alg", alg.name())]);
    match public {
        Some(PublicMembers::Rsa { n, e }) => members.extend([("n", n.as_str()), ("e", e)]),
        Some(PublicMembers::Ec { x, y }) => members.extend([("x", x.as_str()), ("y", y)]),
        Some(PublicMembers::Okp { x }) => members.push(("x", x)),
        None => {}
    }
    match private {
        Some(PrivateMembers::Oct { k }) => members.push(("k", k)),
        Some(PrivateMembers::Rsa {
            d,
            p,
            q,
            dp,
            dq,
            qi,
        }) => members.extend([
            ("d", d.as_str()),
            ("p", p),
            ("q", q),
            ("dp", dp),
            ("dq", dq),
            ("qi", qi),
        ]),
        Some(PrivateMembers::Scalar { d }) => members.push(("d", d)),
        None => {}
    }
    let jwk = JwkOut(members);

    // Sized up front (a `kid` may expand sixfold when escaped) so that the
    // buffer holding the secret is never reallocated and left behind.
    let capacity = 128
        + jwk
            .0
            .iter()
            .map(|(_, value)| value.len() * 6 + 8)
            .sum::<usize>();
    let mut buffer = Zeroizing::new(Vec::with_capacity(capacity));
    serde_json::to_writer(&mut *buffer, &jwk)
        .map_err(|_| KeyError::NotExportable("the JWK could not be serialized"))?;
    let text = String::from_utf8(std::mem::take(&mut *buffer)).map_err(|error| {
        error.into_bytes().zeroize();
        KeyError::NotExportable("the JWK could not be serialized")
    })?;
    Ok(Zeroizing::new(text))
}

#[cfg(test)]
mod tests {
    use super::super::{KeyRing, SigningKey, VerificationKey};
    use super::*;

    macro_rules! pem {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/vectors/pem/",
                $name
            ))
        };
    }

    fn json(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap()
    }

    fn generated() -> Vec<SigningKey> {
        JwsAlgorithm::ALL
            .iter()
            .map(|&alg| SigningKey::generate(alg, &format!("{alg}-1")).unwrap())
            .collect()
    }

    fn from_pem() -> Vec<SigningKey> {
        vec![
            SigningKey::from_pem(JwsAlgorithm::Rs256, "pkcs1", pem!("rsa2048-pkcs1.pem")).unwrap(),
            SigningKey::from_pem(JwsAlgorithm::Rs256, "pkcs8", pem!("rsa2048-pkcs8.pem")).unwrap(),
            SigningKey::from_pem(JwsAlgorithm::Es256, "sec1", pem!("p256-sec1.pem")).unwrap(),
            SigningKey::from_pem(JwsAlgorithm::Es256, "p8", pem!("p256-pkcs8.pem")).unwrap(),
            SigningKey::from_pem(JwsAlgorithm::EdDsa, "ed", pem!("ed25519-pkcs8.pem")).unwrap(),
        ]
    }

    #[test]
    fn private_jwk_round_trips_to_a_key_that_signs_what_the_original_verifies() {
        for key in generated().into_iter().chain(from_pem()) {
            let jwk = key.to_private_jwk().unwrap();
            assert_eq!(jwk.kid(), key.kid());
            assert_eq!(jwk.algorithm(), key.algorithm());
            let back = SigningKey::from_jwk(jwk.expose_secret()).unwrap();
            assert_eq!(back.kid(), key.kid());
            assert_eq!(back.algorithm(), key.algorithm());

            let message = b"header.payload";
            let signature = back.sign(message).unwrap();
            assert!(
                key.verification_key().verify(message, &signature),
                "{key:?}"
            );
            let signature = key.sign(message).unwrap();
            assert!(
                back.verification_key().verify(message, &signature),
                "{key:?}"
            );
            // Deterministic algorithms give the very same signature.
            if matches!(
                key.algorithm(),
                JwsAlgorithm::Hs256 | JwsAlgorithm::Rs256 | JwsAlgorithm::EdDsa
            ) {
                assert_eq!(back.sign(message).unwrap(), signature);
            }
            // Exporting the re-read key gives the same JWK.
            assert_eq!(
                back.to_private_jwk().unwrap().expose_secret(),
                jwk.expose_secret()
            );
        }
    }

    #[test]
    fn public_jwk_round_trips_to_a_key_that_verifies_the_originals_signatures() {
        for key in generated().into_iter().chain(from_pem()) {
            if key.algorithm() == JwsAlgorithm::Hs256 {
                continue;
            }
            let public = key.to_public_jwk().unwrap();
            let back = VerificationKey::from_jwk(&public).unwrap();
            assert_eq!(back.kid(), Some(key.kid()));
            assert_eq!(back.algorithm(), key.algorithm());
            let signature = key.sign(b"m").unwrap();
            assert!(back.verify(b"m", &signature));
            assert!(!back.verify(b"n", &signature));
            // A public JWK is never accepted as a signing key.
            assert!(SigningKey::from_jwk(&public).is_err());
        }
    }

    #[test]
    fn public_keys_read_from_pem_export_too() {
        for (alg, pem) in [
            (JwsAlgorithm::Rs256, &pem!("rsa2048-spki.pem")[..]),
            (JwsAlgorithm::Rs256, pem!("rsa2048-pkcs1-public.pem")),
            (JwsAlgorithm::Es256, pem!("p256-spki.pem")),
            (JwsAlgorithm::EdDsa, pem!("ed25519-spki.pem")),
        ] {
            let key = VerificationKey::from_pem(alg, None, pem).unwrap();
            let jwk = json(&key.to_public_jwk().unwrap());
            assert!(jwk.get("kid").is_none(), "no kid, none written");
            let back = VerificationKey::from_jwk(&jwk.to_string()).unwrap();
            assert_eq!(back.algorithm(), alg);
        }
    }

    #[test]
    fn jwks_carry_kid_alg_use_and_exactly_the_members_of_their_key_type() {
        let expected: [(&str, &[&str], &[&str]); 4] = [
            ("oct", &[], &["k"]),
            ("RSA", &["n", "e"], &["d", "p", "q", "dp", "dq", "qi"]),
            ("EC", &["x", "y"], &["d"]),
            ("OKP", &["x"], &["d"]),
        ];
        for (key, (kty, public, private)) in generated().into_iter().zip(expected) {
            let jwk = json(key.to_private_jwk().unwrap().expose_secret());
            assert_eq!(jwk["kty"], kty);
            assert_eq!(jwk["kid"], key.kid());
            assert_eq!(jwk["alg"], key.algorithm().name());
            assert_eq!(jwk["use"], "sig");
            let header = ["kty", "crv", "kid", "use", "alg"];
            let mut names: Vec<&str> = jwk
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .filter(|name| !header.contains(name))
                .collect();
            names.sort_unstable();
            let mut want: Vec<&str> = public.iter().chain(private).copied().collect();
            want.sort_unstable();
            assert_eq!(names, want, "{kty}");
            for name in &names {
                let value = jwk[*name].as_str().unwrap();
                let bytes = URL_SAFE_NO_PAD.decode(value).unwrap();
                match kty {
                    // Base64urlUInt: minimal octets (RFC 7518 §6.3).
                    "RSA" => assert_ne!(bytes.first(), Some(&0), "{kty} {name} is minimal"),
                    // Octet strings of the full size (RFC 7518 §6.2.1, RFC 8037
                    // §2); a generated HMAC secret is 32 bytes.
                    _ => assert_eq!(bytes.len(), 32, "{kty} {name}"),
                }
            }

            if key.algorithm() != JwsAlgorithm::Hs256 {
                let public_jwk = json(&key.to_public_jwk().unwrap());
                for name in private {
                    assert!(
                        public_jwk.get(*name).is_none(),
                        "{kty} public has no {name}"
                    );
                }
                assert_eq!(public_jwk["use"], "sig");
                assert_eq!(public_jwk["kid"], key.kid());
            }
        }
    }

    #[test]
    fn jwk_members_are_written_in_a_fixed_order() {
        let key = SigningKey::hmac_sha256("hs", &[0x42; 32]).unwrap();
        assert_eq!(
            key.to_private_jwk().unwrap().expose_secret(),
            format!(
                r#"{{"kty":"oct","kid":"hs","use":"sig","alg":"HS256","k":"{}"}}"#,
                b64(&[0x42; 32])
            )
        );
        let key = VerificationKey::from_pem(JwsAlgorithm::Es256, Some("ec"), pem!("p256-spki.pem"))
            .unwrap();
        let names: Vec<String> = key
            .to_public_jwk()
            .unwrap()
            .split('"')
            .skip(1)
            .step_by(4)
            .map(str::to_owned)
            .collect();
        assert_eq!(names, ["kty", "crv", "kid", "use", "alg", "x", "y"]);
    }

    #[test]
    fn hmac_keys_have_no_public_jwk_and_their_secret_round_trips() {
        let key = SigningKey::hmac_sha256("hs", &[0x42; 40]).unwrap();
        assert!(matches!(
            key.to_public_jwk(),
            Err(KeyError::NotExportable(_))
        ));
        assert!(matches!(
            KeyRing::new(key.clone()).to_public_jwk_set(),
            Err(KeyError::NotExportable(_))
        ));
        let jwk = json(key.to_private_jwk().unwrap().expose_secret());
        assert_eq!(jwk["k"], b64(&[0x42; 40]));
    }

    #[test]
    fn a_public_jwk_set_loads_back_as_a_ring_that_verifies_every_key() {
        let first = SigningKey::generate(JwsAlgorithm::EdDsa, "one").unwrap();
        let second = SigningKey::generate(JwsAlgorithm::Es256, "two").unwrap();
        let ring = KeyRing::new(first.clone())
            .with_signing_key(second.clone())
            .unwrap();
        let set = ring.to_public_jwk_set().unwrap();
        assert_eq!(json(&set)["keys"].as_array().unwrap().len(), 2);
        let back = KeyRing::from_jwk_set(&set).unwrap();
        assert!(back.signing_key().is_none());
        for key in [first, second] {
            let signature = key.sign(b"m").unwrap();
            let verifier = back.select(Some(key.kid()), key.algorithm()).unwrap();
            assert!(verifier.verify(b"m", &signature));
        }
    }

    #[test]
    fn kids_are_escaped_as_json_strings() {
        let key = SigningKey::generate(JwsAlgorithm::EdDsa, "a\"b\\c\n").unwrap();
        let jwk = key.to_private_jwk().unwrap();
        assert_eq!(json(jwk.expose_secret())["kid"], "a\"b\\c\n");
        assert_eq!(
            SigningKey::from_jwk(jwk.expose_secret()).unwrap().kid(),
            "a\"b\\c\n"
        );
    }

    #[test]
    fn a_private_jwk_never_prints_its_material() {
        let key = SigningKey::hmac_sha256("hs", &[0x42; 32]).unwrap();
        let jwk = key.to_private_jwk().unwrap();
        let printed = format!("{jwk:?}");
        assert!(printed.contains("redacted") && printed.contains("hs"));
        assert!(!printed.contains(&b64(&[0x42; 32])), "{printed}");
        for key in generated() {
            let jwk = key.to_private_jwk().unwrap();
            let d = json(jwk.expose_secret())
                .get("d")
                .map(|d| d.as_str().unwrap().to_owned());
            if let Some(d) = d {
                assert!(!format!("{jwk:?}").contains(&d));
            }
        }
    }
}
