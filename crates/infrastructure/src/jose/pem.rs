//! A strict reader for one PEM block (RFC 7468) holding a key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::error::{KeyError, Unsupported};

/// The PEM labels tessera reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum PemLabel {
    /// `PRIVATE KEY`: PKCS#8 `PrivateKeyInfo` (RSA, EC or Ed25519).
    Pkcs8,
    /// `RSA PRIVATE KEY`: PKCS#1 `RSAPrivateKey`.
    RsaPkcs1,
    /// `EC PRIVATE KEY`: SEC1 / RFC 5915 `ECPrivateKey`.
    EcSec1,
    /// `PUBLIC KEY`: X.509 `SubjectPublicKeyInfo`.
    Spki,
    /// `RSA PUBLIC KEY`: PKCS#1 `RSAPublicKey`.
    RsaPublicPkcs1,
}

/// A decoded PEM block. The DER is wiped when dropped: it may be a private key.
pub(crate) struct Pem {
    pub(crate) label: PemLabel,
    pub(crate) der: Zeroizing<Vec<u8>>,
}

/// Reads exactly one PEM block. Explanatory text before the block is allowed
/// (RFC 7468 §2); a second block, encryption headers or a label other than
/// the five key labels above are refused.
pub(crate) fn decode(input: &[u8]) -> Result<Pem, KeyError> {
    let text = std::str::from_utf8(input).map_err(|_| KeyError::InvalidPem("not UTF-8 text"))?;
    let (_, after_begin) = text
        .split_once("-----BEGIN ")
        .ok_or(KeyError::InvalidPem("no BEGIN line"))?;
    let (label, rest) = after_begin
        .split_once("-----")
        .ok_or(KeyError::InvalidPem("unterminated BEGIN line"))?;
    let (body, after_end) = rest
        .split_once("-----END ")
        .ok_or(KeyError::InvalidPem("no END line"))?;
    let (end_label, trailer) = after_end
        .split_once("-----")
        .ok_or(KeyError::InvalidPem("unterminated END line"))?;
    if end_label != label {
        return Err(KeyError::InvalidPem("END label differs from BEGIN label"));
    }
    if trailer.contains("-----BEGIN ") {
        return Err(KeyError::InvalidPem("more than one PEM block"));
    }

    let label = match label {
        "PRIVATE KEY" => PemLabel::Pkcs8,
        "RSA PRIVATE KEY" => PemLabel::RsaPkcs1,
        "EC PRIVATE KEY" => PemLabel::EcSec1,
        "PUBLIC KEY" => PemLabel::Spki,
        "RSA PUBLIC KEY" => PemLabel::RsaPublicPkcs1,
        "ENCRYPTED PRIVATE KEY" => {
            return Err(KeyError::UnsupportedKey(Unsupported::EncryptedPem));
        }
        _ => return Err(KeyError::UnsupportedKey(Unsupported::PemLabel)),
    };
    // Legacy OpenSSL encryption puts `Proc-Type:` / `DEK-Info:` headers in
    // the body.
    if body.contains(':') {
        return Err(KeyError::UnsupportedKey(Unsupported::EncryptedPem));
    }

    let base64: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    let der = STANDARD
        .decode(base64.as_bytes())
        .map_err(|_| KeyError::InvalidPem("body is not base64"))?;
    if der.is_empty() {
        return Err(KeyError::InvalidPem("empty body"));
    }
    Ok(Pem {
        label,
        der: Zeroizing::new(der),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPKI: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";

    #[test]
    fn one_block_with_leading_text_decodes() {
        let pem = decode(format!("a comment\n{SPKI}").as_bytes()).unwrap();
        assert_eq!(pem.label, PemLabel::Spki);
        assert_eq!(pem.der.len(), 44);
    }

    #[test]
    fn malformed_pem_documents_are_refused_with_the_reason() {
        let cases: [(&[u8], &str); 6] = [
            (b"\xff\xfe", "not UTF-8 text"),
            (b"MCowBQYDK2VwAyEA", "no BEGIN line"),
            (b"-----BEGIN PUBLIC KEY\nabc", "unterminated BEGIN line"),
            (b"-----BEGIN PUBLIC KEY-----\nMCow\n", "no END line"),
            (
                b"-----BEGIN PUBLIC KEY-----\nMCow\n-----END PRIVATE KEY-----\n",
                "END label differs from BEGIN label",
            ),
            (
                b"-----BEGIN PUBLIC KEY-----\nM!ow\n-----END PUBLIC KEY-----\n",
                "body is not base64",
            ),
        ];
        for (input, reason) in cases {
            assert!(
                matches!(decode(input), Err(KeyError::InvalidPem(r)) if r == reason),
                "{reason}"
            );
        }
        let two = format!("{SPKI}{SPKI}");
        assert!(matches!(
            decode(two.as_bytes()),
            Err(KeyError::InvalidPem("more than one PEM block"))
        ));
    }

    #[test]
    fn certificates_and_encrypted_keys_are_unsupported() {
        assert!(matches!(
            decode(b"-----BEGIN CERTIFICATE-----\nMCow\n-----END CERTIFICATE-----\n"),
            Err(KeyError::UnsupportedKey(Unsupported::PemLabel))
        ));
        assert!(matches!(
            decode(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMCow\n-----END ENCRYPTED PRIVATE KEY-----\n"),
            Err(KeyError::UnsupportedKey(Unsupported::EncryptedPem))
        ));
        assert!(matches!(
            decode(b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nMCow\n-----END RSA PRIVATE KEY-----\n"),
            Err(KeyError::UnsupportedKey(Unsupported::EncryptedPem))
        ));
    }
}
