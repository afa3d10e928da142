//! The DER reader, through the narrowest public door: the input is the
//! DER of one key, armoured as each PEM label tessera reads (`PUBLIC KEY`,
//! `RSA PUBLIC KEY`, `PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`)
//! and loaded for every algorithm, so that the SPKI, PKCS#1, PKCS#8 and
//! SEC1 readers see arbitrary DER. Never a panic.

#![no_main]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use tessera_infrastructure::{SigningKey, VerificationKey};


fn armour(label: &str, der: &[u8]) -> Vec<u8> {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem.into_bytes()
}

fuzz_target!(|der: &[u8]| {
    for label in ["PUBLIC KEY", "RSA PUBLIC KEY"] {
        let pem = armour(label, der);
        for alg in common::ALGORITHMS {
            let _ = VerificationKey::from_pem(alg, Some("k"), &pem);
        }
    }
    for label in ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"] {
        let pem = armour(label, der);
        for alg in common::ALGORITHMS {
            let _ = SigningKey::from_pem(alg, "k", &pem);
        }
    }
});
