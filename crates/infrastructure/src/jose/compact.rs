//! Compact JWS (RFC 7515 §7.1): verification on the hot path, and signing.

use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::sync::Arc;

use base64::Engine as _;
use base64::encoded_len;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64_simd::AsOut as _;
use serde::Deserialize;

use super::algorithm::JwsAlgorithm;
use super::error::{JwsError, KeyError};
use super::header::{JwsHeader, VerifiedJws};
use super::keys::{MAX_SIGNATURE_BYTES, SigningKey};
use super::ring::KeyRing;
use super::serde_util::{ObjectOnly, borrowed_opt_str, present};

/// The header as parsed, borrowing from the decoded header bytes.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    alg: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    kid: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt_str")]
    typ: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// Headers up to this size are decoded on the stack.
const HEADER_STACK_BYTES: usize = 512;
/// A base64url decoding buffer must hold the decoder's estimate, which for
/// the longest signature (1024 bytes, 1366 characters) is 1026 bytes.
const SIGNATURE_BUFFER_BYTES: usize = MAX_SIGNATURE_BYTES + 2;

/// base64url as JWS wants it: no padding, canonical trailing bits (the
/// same rules as `URL_SAFE_NO_PAD` of the `base64` crate), SIMD-accelerated.
const STRICT_B64URL: base64_simd::Base64 = base64_simd::URL_SAFE_NO_PAD;

/// What [`decode_into`] made of a part.
enum Decoded<'b> {
    Fits(&'b [u8]),
    TooLong,
    NotBase64,
}

/// Decodes the base64url `text` into the front of `buffer`.
fn decode_into<'b>(text: &str, buffer: &'b mut [MaybeUninit<u8>]) -> Decoded<'b> {
    let Ok(len) = STRICT_B64URL.decoded_length(text.as_bytes()) else {
        return Decoded::NotBase64;
    };
    // Checked here: the decoder panics on a buffer that is too small.
    let Some(out) = buffer.get_mut(..len) else {
        return Decoded::TooLong;
    };
    match STRICT_B64URL.decode(text.as_bytes(), out.as_out()) {
        Ok(bytes) => Decoded::Fits(bytes),
        Err(_) => Decoded::NotBase64,
    }
}

/// Verifies a compact JWS against `ring` and returns its header and payload.
///
/// In order, and stopping at the first failure: the token is at most
/// `max_len` bytes (checked before any decoding); it has exactly three parts
/// of strict base64url (URL-safe alphabet, no padding, canonical trailing
/// bits), the header non-empty and the payload decoded first; the header is a
/// JSON object with no repeated `alg`/`kid`/`typ`/`crit` member and no
/// `crit`; `alg` is supported; the ring selects a key by `kid` and that key's
/// algorithm is `alg`; the signature verifies over the first two parts as
/// they appear in the token. The payload is not interpreted.
///
/// The hot path finds the parts with two scans, performs one signature
/// check with the pre-parsed key and allocates only for the payload. A
/// header is decoded (on the stack up to 512 bytes) and parsed only the
/// first time the ring sees it verify: the ring remembers, per key, the
/// first header text a signature verified under, with its outcome, and a
/// token carrying the same text skips to the signature check.
///
/// # Errors
///
/// The [`JwsError`] variant for the first rule that fails.
pub fn verify_compact(
    token: &str,
    ring: &KeyRing,
    max_len: usize,
) -> Result<VerifiedJws, JwsError> {
    if token.len() > max_len {
        return Err(JwsError::TooLarge { max: max_len });
    }
    // The header ends at the first dot and the signature starts after the
    // last one: where a remembered header names the key, at that key's
    // signature length from the end, without a scan. A dot anywhere else
    // is not base64url, so decoding the payload or the signature finds a
    // fourth part.
    let three_parts = || JwsError::Malformed("not three dot-separated parts");
    let (header_b64, rest) = token.split_once('.').ok_or_else(three_parts)?;
    if header_b64.is_empty() {
        return Err(JwsError::Malformed("header is empty"));
    }
    let known = ring.known_header(header_b64);
    let at_signature = known
        .and_then(|(index, _)| ring.key(index).ok())
        .and_then(|key| rest.len().checked_sub(key.encoded_signature_len() + 1))
        .filter(|&dot| rest.as_bytes().get(dot) == Some(&b'.'))
        .and_then(|dot| Some((rest.get(..dot)?, rest.get(dot + 1..)?)));
    let (payload_b64, signature_b64) = match at_signature {
        Some(parts) => parts,
        None => rest.rsplit_once('.').ok_or_else(three_parts)?,
    };
    let payload = STRICT_B64URL
        .decode_to_vec(payload_b64.as_bytes())
        .map_err(|_| {
            if payload_b64.contains('.') {
                three_parts()
            } else {
                JwsError::Malformed("payload is not base64url")
            }
        })?;

    let (index, header) = match known {
        Some((index, known)) => (index, known.header.clone()),
        None => read_header(header_b64, ring)?,
    };
    let key = ring.key(index)?;

    let mut signature = [MaybeUninit::uninit(); SIGNATURE_BUFFER_BYTES];
    let signature = match decode_into(signature_b64, &mut signature) {
        Decoded::Fits(bytes) => bytes,
        // Longer than any accepted key's signature.
        Decoded::TooLong => return Err(JwsError::InvalidSignature),
        Decoded::NotBase64 if signature_b64.contains('.') => return Err(three_parts()),
        Decoded::NotBase64 => return Err(JwsError::Malformed("signature is not base64url")),
    };
    let signing_input = token
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or_else(three_parts)?;
    if !key.verify(signing_input.as_bytes(), signature) {
        return Err(JwsError::InvalidSignature);
    }
    if known.is_none() {
        ring.remember_header(index, header_b64, &header);
    }
    Ok(VerifiedJws { header, payload })
}

/// Decodes and parses a protected header and selects its key: the key's
/// position in `ring`, and the header.
fn read_header(header_b64: &str, ring: &KeyRing) -> Result<(usize, JwsHeader), JwsError> {
    let mut header_stack = [MaybeUninit::uninit(); HEADER_STACK_BYTES];
    let header_heap: Vec<u8>;
    let header_json: &[u8] = match decode_into(header_b64, &mut header_stack) {
        Decoded::Fits(bytes) => bytes,
        Decoded::TooLong => {
            header_heap = STRICT_B64URL
                .decode_to_vec(header_b64.as_bytes())
                .map_err(|_| JwsError::Malformed("header is not base64url"))?;
            &header_heap
        }
        Decoded::NotBase64 => return Err(JwsError::Malformed("header is not base64url")),
    };
    let header = serde_json::from_slice::<ObjectOnly<RawHeader<'_>>>(header_json)
        .map_err(|_| JwsError::Malformed("header is not a JSON object of the JWS shape"))?
        .0;
    if header.crit {
        return Err(JwsError::CriticalHeader);
    }
    let alg = header
        .alg
        .as_deref()
        .ok_or(JwsError::Malformed("header has no alg"))?;
    let alg = JwsAlgorithm::from_name(alg).ok_or(JwsError::UnsupportedAlgorithm)?;
    let index = ring.select_position(header.kid.as_deref(), alg)?;
    Ok((
        index,
        JwsHeader {
            alg,
            kid: header.kid.as_deref().map(Arc::from),
            typ: header.typ.as_deref().map(Arc::from),
        },
    ))
}

/// The base64url protected header `{"alg":…,"kid":…,"typ":…}` for tokens
/// signed by `key`. Compute it once per key and pass it to [`sign_compact`].
#[must_use]
pub fn encode_header(key: &SigningKey, typ: &str) -> String {
    // `Value::to_string` quotes and escapes a JSON string, infallibly.
    let json = format!(
        r#"{{"alg":"{}","kid":{},"typ":{}}}"#,
        key.algorithm().name(),
        serde_json::Value::from(key.kid()),
        serde_json::Value::from(typ),
    );
    URL_SAFE_NO_PAD.encode(json)
}

/// Signs `payload_json` with `key` under `encoded_header` (from
/// [`encode_header`] for the same key) and returns the compact JWS.
///
/// One allocation: the returned string, sized up front.
///
/// # Errors
///
/// [`KeyError::InvalidEncodedHeader`] when `encoded_header` is empty or not
/// base64url; [`KeyError::Crypto`] when signing fails.
pub fn sign_compact(
    key: &SigningKey,
    encoded_header: &str,
    payload_json: &[u8],
) -> Result<String, KeyError> {
    if encoded_header.is_empty()
        || !encoded_header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(KeyError::InvalidEncodedHeader);
    }
    let capacity = encoded_len(payload_json.len(), false)
        .zip(encoded_len(key.signature_len(), false))
        .and_then(|(payload, signature)| {
            encoded_header
                .len()
                .checked_add(payload)?
                .checked_add(signature)?
                .checked_add(2)
        })
        .unwrap_or(0);
    let mut token = String::with_capacity(capacity);
    token.push_str(encoded_header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload_json, &mut token);

    let mut signature = [0u8; MAX_SIGNATURE_BYTES];
    let len = key.sign_into(token.as_bytes(), &mut signature)?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.get(..len).unwrap_or_default(), &mut token);
    Ok(token)
}
