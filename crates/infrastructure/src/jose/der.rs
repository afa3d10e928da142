//! A minimal DER reader for the two structures the JWK export reads back
//! from the crypto library: PKCS#8 `PrivateKeyInfo` holding an RSA key
//! (RFC 5208, RFC 8017 §A.1.2) and X.509 `SubjectPublicKeyInfo` (RFC 5280).
//!
//! It reads definite-length, single-byte-tag TLVs only, which is all DER
//! produced by aws-lc for these structures uses. Every read is bounds
//! checked and returns `None` on anything unexpected.

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;

/// A cursor over DER bytes.
pub(crate) struct Der<'a> {
    input: &'a [u8],
}

impl<'a> Der<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input }
    }

    /// Reads one element with `tag` and returns its contents.
    pub(crate) fn read(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (&found, rest) = self.input.split_first()?;
        if found != tag {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return None;
            }
            let (bytes, after) = rest.split_at_checked(count)?;
            rest = after;
            bytes
                .iter()
                .fold(0usize, |len, &byte| (len << 8) | usize::from(byte))
        };
        let (contents, rest) = rest.split_at_checked(len)?;
        self.input = rest;
        Some(contents)
    }

    /// Reads a non-negative INTEGER and returns its minimal big-endian
    /// octets (RFC 7518 `Base64urlUInt`: no leading zeros; zero is one
    /// zero octet).
    pub(crate) fn read_unsigned(&mut self) -> Option<&'a [u8]> {
        let value = self.read(INTEGER)?;
        if value.first().is_some_and(|&high| high & 0x80 != 0) {
            return None; // negative
        }
        let start = value
            .iter()
            .position(|&byte| byte != 0)
            .unwrap_or(value.len().saturating_sub(1));
        value.get(start..).filter(|octets| !octets.is_empty())
    }

    /// Reads a SEQUENCE and returns a cursor over its contents.
    pub(crate) fn read_sequence(&mut self) -> Option<Der<'a>> {
        self.read(SEQUENCE).map(Der::new)
    }

    /// Whether every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.input.is_empty()
    }
}

/// The key bytes of an X.509 `SubjectPublicKeyInfo` (the BIT STRING's
/// contents, which must have no unused bits).
pub(crate) fn spki_key(spki: &[u8]) -> Option<&[u8]> {
    let mut outer = Der::new(spki);
    let mut info = outer.read_sequence()?;
    info.read_sequence()?; // AlgorithmIdentifier, checked by the crypto library
    let bits = info.read(BIT_STRING)?;
    let (&unused, key) = bits.split_first()?;
    (unused == 0 && info.is_empty() && outer.is_empty()).then_some(key)
}

/// The eight integers of a two-prime RSA private key, minimal big-endian.
pub(crate) struct RsaPrivateParts<'a> {
    pub(crate) n: &'a [u8],
    pub(crate) e: &'a [u8],
    pub(crate) d: &'a [u8],
    pub(crate) p: &'a [u8],
    pub(crate) q: &'a [u8],
    pub(crate) dp: &'a [u8],
    pub(crate) dq: &'a [u8],
    pub(crate) qi: &'a [u8],
}

/// The RSA key inside a PKCS#8 `PrivateKeyInfo` (version 0 `RSAPrivateKey`:
/// two primes only).
pub(crate) fn pkcs8_rsa(pkcs8: &[u8]) -> Option<RsaPrivateParts<'_>> {
    let mut outer = Der::new(pkcs8);
    let mut info = outer.read_sequence()?;
    info.read(INTEGER)?; // PrivateKeyInfo version
    info.read_sequence()?; // AlgorithmIdentifier
    let mut key_der = Der::new(info.read(OCTET_STRING)?);
    let mut key = key_der.read_sequence()?;
    if key.read_unsigned()? != [0] {
        return None; // multi-prime
    }
    let parts = RsaPrivateParts {
        n: key.read_unsigned()?,
        e: key.read_unsigned()?,
        d: key.read_unsigned()?,
        p: key.read_unsigned()?,
        q: key.read_unsigned()?,
        dp: key.read_unsigned()?,
        dq: key.read_unsigned()?,
        qi: key.read_unsigned()?,
    };
    (key.is_empty() && key_der.is_empty() && outer.is_empty()).then_some(parts)
}

/// The modulus and exponent of a PKCS#1 `RSAPublicKey`.
pub(crate) fn rsa_public(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut outer = Der::new(der);
    let mut key = outer.read_sequence()?;
    let n = key.read_unsigned()?;
    let e = key.read_unsigned()?;
    (key.is_empty() && outer.is_empty()).then_some((n, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_form_lengths_are_read() {
        let mut der = Der::new(&[0x04, 0x02, 0xaa, 0xbb, 0x04, 0x81, 0x01, 0xcc]);
        assert_eq!(der.read(OCTET_STRING), Some(&[0xaa, 0xbb][..]));
        assert_eq!(der.read(OCTET_STRING), Some(&[0xcc][..]));
        assert!(der.is_empty());
    }

    #[test]
    fn truncated_or_mistagged_input_is_refused_without_panicking() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x00],
            &[0x30, 0x80],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x82, 0xff],
            &[0x02, 0x01, 0x00],
        ] {
            assert_eq!(Der::new(input).read(SEQUENCE), None, "{input:?}");
        }
    }

    #[test]
    fn unsigned_integers_lose_leading_zeros_and_negatives_are_refused() {
        assert_eq!(
            Der::new(&[0x02, 0x03, 0x00, 0x80, 0x01]).read_unsigned(),
            Some(&[0x80, 0x01][..])
        );
        assert_eq!(
            Der::new(&[0x02, 0x02, 0x00, 0x00]).read_unsigned(),
            Some(&[0x00][..])
        );
        assert_eq!(Der::new(&[0x02, 0x01, 0x80]).read_unsigned(), None);
        assert_eq!(Der::new(&[0x02, 0x00]).read_unsigned(), None);
    }
}
