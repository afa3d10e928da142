//! Credential and cookie extraction (`tessera_http::read_credential`): the
//! input is lines, `A` + an `Authorization` value or `C` + a `Cookie`
//! value. Every input gives a credential, none, or a typed fault, never a
//! panic; a token found is one the request carried, within the cap.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_application::PresentedCredential;
use tessera_http::{DEFAULT_COOKIE_NAME, read_credential};

const MAX: usize = 512;

fuzz_target!(|data: &[u8]| {
    let mut authorization = Vec::new();
    let mut cookies = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        match line.split_first() {
            Some((b'A', value)) => authorization.push(value),
            Some((b'C', value)) => cookies.push(value),
            _ => {}
        }
    }
    let found = read_credential(
        authorization.iter().copied(),
        cookies.iter().copied(),
        DEFAULT_COOKIE_NAME,
        MAX,
    );
    if let PresentedCredential::Token { token, .. } = found {
        assert!(!token.is_empty() && token.len() <= MAX);
        let carried = authorization
            .iter()
            .chain(cookies.iter())
            .any(|value| value.windows(token.len()).any(|w| w == token.as_bytes()));
        assert!(carried, "the token comes from the request");
    }
});
