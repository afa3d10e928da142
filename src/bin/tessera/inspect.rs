//! `tessera inspect`: a token decoded WITHOUT verifying anything.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::args::InspectArgs;
use crate::failure::Failure;
use crate::files;
use crate::output::Output;
use crate::times;

/// What `inspect` says before anything else, and what its JSON carries.
const UNVERIFIED: &str = "UNVERIFIED: decoded only. Nothing here is checked: not the \
    signature, the issuer, the audience, the lifetimes or revocation. Run `tessera verify` \
    for a verdict.";

/// The time claims, in the order a session lives them.
const TIME_CLAIMS: [&str; 4] = ["auth_time", "iat", "nbf", "exp"];

/// Base64 as other encoders write it: padding allowed, non-canonical
/// trailing bits allowed. Verification refuses both; inspect shows them.
const LENIENT_CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const LENIENT_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT_CONFIG);
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT_CONFIG);

/// A token's parts, decoded and not verified.
#[derive(Debug)]
pub(crate) struct Unverified {
    /// The header, a JSON object.
    pub(crate) header: Map<String, Value>,
    /// The payload, as JSON.
    pub(crate) claims: Value,
    /// The signature's length in bytes.
    pub(crate) signature_bytes: usize,
    /// What verification would refuse in the encoding itself.
    pub(crate) warnings: Vec<String>,
}

impl Unverified {
    /// A header member as a string.
    pub(crate) fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// A claim, if the payload is an object holding it.
    pub(crate) fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// A time claim's Unix seconds.
    pub(crate) fn time_claim(&self, name: &str) -> Option<i64> {
        self.claim(name).and_then(Value::as_i64)
    }
}

/// Decodes a compact JWS without verifying it.
///
/// # Errors
///
/// The part that is wrong, in words.
pub(crate) fn decode(token: &str) -> Result<Unverified, String> {
    if token.is_empty() {
        return Err("the token is empty".to_owned());
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err(match parts.len() {
            5 => "the token has 5 dot-separated parts: it is an encrypted JWE, not a signed \
                  JWS"
            .to_owned(),
            n => format!("the token has {n} dot-separated part(s); a compact JWS has 3"),
        });
    };
    let mut warnings = Vec::new();
    let header = part("header", header, &mut warnings)?;
    let header = match serde_json::from_slice::<Value>(&header) {
        Ok(Value::Object(header)) => header,
        Ok(_) => return Err("the header is JSON but not an object".to_owned()),
        Err(_) => return Err("the header is not JSON".to_owned()),
    };
    let payload = part("payload", payload, &mut warnings)?;
    let claims = serde_json::from_slice::<Value>(&payload)
        .map_err(|_| "the payload is not JSON".to_owned())?;
    let signature = part("signature", signature, &mut warnings)?;
    Ok(Unverified {
        header,
        claims,
        signature_bytes: signature.len(),
        warnings,
    })
}

/// One part's bytes: strict base64url, or else leniently decoded with a
/// warning that verification refuses it.
fn part(name: &str, encoded: &str, warnings: &mut Vec<String>) -> Result<Vec<u8>, String> {
    if let Ok(bytes) = URL_SAFE_NO_PAD.decode(encoded) {
        return Ok(bytes);
    }
    let lenient = LENIENT_URL_SAFE
        .decode(encoded)
        .or_else(|_| LENIENT_STANDARD.decode(encoded))
        .map_err(|_| format!("the {name} is not base64url"))?;
    warnings.push(format!(
        "the {name} is not strict base64url (padding, `+` or `/`, or stray bits): verify \
         refuses it as token_malformed"
    ));
    Ok(lenient)
}

pub(crate) fn run(args: &InspectArgs, output: &Output) -> Result<(), Failure> {
    let token = files::read_token(&args.token)?;
    let now = args.now.unwrap_or_else(times::system_now);
    let decoded = decode(&token)
        .map_err(|reason| Failure::new("malformed_token", format!("cannot decode: {reason}")))?;

    let times = TIME_CLAIMS
        .iter()
        .filter_map(|&claim| {
            let seconds = decoded.time_claim(claim)?;
            let at = times::from_unix(seconds);
            Some((claim, seconds, at))
        })
        .collect::<Vec<_>>();
    let lifetime = decoded
        .time_claim("exp")
        .zip(decoded.time_claim("iat"))
        .and_then(|(exp, iat)| exp.checked_sub(iat));

    if output.is_json() {
        let times_json: Map<String, Value> = times
            .iter()
            .map(|&(claim, seconds, at)| {
                let value = json!({
                    "unix": seconds,
                    "utc": at.map(times::utc),
                    "relative": at.map(|at| times::relative(claim, at, now)),
                });
                (claim.to_owned(), value)
            })
            .collect();
        return output.document(&json!({
            "ok": true,
            "verified": false,
            "warning": UNVERIFIED,
            "header": decoded.header,
            "claims": decoded.claims,
            "signature_bytes": decoded.signature_bytes,
            "now": now.unix_timestamp(),
            "times": times_json,
            "lifetime_seconds": lifetime,
            "encoding_warnings": decoded.warnings,
        }));
    }
    output.stdout(&[&human(&decoded, &times, lifetime, now)])
}

fn human(
    decoded: &Unverified,
    times: &[(&str, i64, Option<OffsetDateTime>)],
    lifetime: Option<i64>,
    now: OffsetDateTime,
) -> String {
    let pretty =
        |value: &Value| serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let mut text = format!(
        "{UNVERIFIED}\n\nheader:\n{}\n\nclaims:\n{}\n\nsignature: {} bytes\n",
        pretty(&Value::Object(decoded.header.clone())),
        pretty(&decoded.claims),
        decoded.signature_bytes,
    );
    for warning in &decoded.warnings {
        text.push_str(&format!("warning: {warning}\n"));
    }
    if !times.is_empty() {
        text.push_str(&format!("\ntimes (UTC; now {}):\n", times::utc(now)));
        for &(claim, seconds, at) in times {
            let line = match at {
                Some(at) => format!(
                    "  {claim:<10} {}  {}\n",
                    times::utc(at),
                    times::relative(claim, at, now)
                ),
                None => format!("  {claim:<10} {seconds} (out of range)\n"),
            };
            text.push_str(&line);
        }
        if let Some(lifetime) = lifetime {
            text.push_str(&format!(
                "  {:<10} {}\n",
                "exp - iat",
                times::span(time::Duration::seconds(lifetime))
            ));
        }
    }
    text.truncate(text.trim_end().len());
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    #[test]
    fn a_well_formed_token_decodes_without_a_key() {
        let token = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"EdDSA"}"#),
            b64(r#"{"exp":5}"#),
            b64("sig")
        );
        let decoded = decode(&token).unwrap();
        assert_eq!(decoded.header_str("alg"), Some("EdDSA"));
        assert_eq!(decoded.time_claim("exp"), Some(5));
        assert_eq!(decoded.signature_bytes, 3);
        assert!(decoded.warnings.is_empty());
    }

    #[test]
    fn malformed_tokens_name_the_part_that_is_wrong() {
        let header = b64(r#"{"alg":"EdDSA"}"#);
        let payload = b64("{}");
        let cases = [
            (String::new(), "empty"),
            ("abc".to_owned(), "1 dot-separated part"),
            ("a.b.c.d.e".to_owned(), "JWE"),
            (format!("!!.{payload}.x"), "header is not base64url"),
            (format!("{}.{payload}.", b64("[1]")), "not an object"),
            (format!("{}.{payload}.", b64("nope")), "header is not JSON"),
            (format!("{header}.{}.", b64("nope")), "payload is not JSON"),
            (
                format!("{header}.{payload}.$$"),
                "signature is not base64url",
            ),
        ];
        for (token, reason) in cases {
            let error = decode(&token).unwrap_err();
            assert!(error.contains(reason), "{token:?}: {error}");
        }
    }

    #[test]
    fn padded_base64_decodes_with_a_warning() {
        let token = format!("{}.{}=.", b64(r#"{"alg":"EdDSA"}"#), b64("{}"));
        let decoded = decode(&token).unwrap();
        assert_eq!(decoded.warnings.len(), 1);
        assert!(decoded.warnings[0].contains("payload"));
    }
}
