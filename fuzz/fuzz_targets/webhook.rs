//! Webhook verification (`WebhookVerifier::verify`) with arbitrary headers
//! and body. The input is lines: a first byte picking the mode, then header
//! lines `name: value` up to an empty line, then the body. In the signing
//! mode the `webhook-signature` is computed for the given id, timestamp and
//! body with the verifier's secret, so that the checks after the signature
//! (timestamp tolerance, replay cache) see arbitrary input too. Never a
//! panic.

#![no_main]

mod common;

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tessera_application::ports::Clock;
use tessera_http::{WebhookSecret, WebhookVerifier};
use time::OffsetDateTime;

struct Fixed;
impl Clock for Fixed {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time")
    }
}

fn verifier() -> &'static WebhookVerifier {
    static VERIFIER: OnceLock<WebhookVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let secret = WebhookSecret::from_bytes(common::SECRET).expect("secret");
        WebhookVerifier::new(secret)
            .with_clock(Arc::new(Fixed))
            .with_replay_capacity(64)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (rest, &[][..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    if mode % 2 == 1 {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let mut signed = format!("{}.{}.", text("webhook-id"), text("webhook-timestamp")).into_bytes();
        signed.extend_from_slice(body);
        let tag = common::hs256().sign(&signed).expect("HMAC");
        let value = format!("v1,{}", STANDARD.encode(tag));
        headers.insert("webhook-signature", HeaderValue::from_str(&value).expect("ASCII"));
    }
    let _ = verifier().verify(&headers, body);
});
