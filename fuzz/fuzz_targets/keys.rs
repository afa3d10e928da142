//! Key loading: a public JWK, a private JWK, a JWK set (strict, and as a
//! provider's, skipping what it cannot use) and PEM (public and private,
//! for every algorithm). The first byte picks the reader; every input gets
//! a key or a typed error, never a panic.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use tessera_infrastructure::{KeyRing, SigningKey, VerificationKey};


fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 4 {
        0 => {
            if let Ok(key) = VerificationKey::from_jwk(&text)
                && let Ok(jwk) = key.to_public_jwk()
            {
                // What loads and exports loads again to the same key.
                let again = VerificationKey::from_jwk(&jwk).expect("its export loads");
                assert_eq!(again.algorithm(), key.algorithm());
                assert_eq!(again.kid(), key.kid());
            }
        }
        1 => {
            let _ = SigningKey::from_jwk(&text);
        }
        2 => {
            let _ = KeyRing::from_jwk_set(&text);
            let _ = KeyRing::from_provider_jwk_set(&text);
        }
        _ => {
            for alg in common::ALGORITHMS {
                let _ = VerificationKey::from_pem(alg, Some("k"), rest);
                let _ = SigningKey::from_pem(alg, "k", rest);
            }
        }
    }
});
