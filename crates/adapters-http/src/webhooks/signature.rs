//! Standard Webhooks signatures: secrets, and the verifier that checks a
//! delivery's signature, timestamp and replay.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::{constant_time, hmac};
use base64::Engine as _;
use http::HeaderMap;
use tessera_application::ports::Clock;

use super::deliveries::{Deliveries, Delivery, NewDelivery};
use super::*;
use crate::replay::{Refusal, ReplayCache};
use crate::system_time::SystemTime;

/// A webhook signing secret. Its `Debug` prints `WebhookSecret(**redacted**)`.
#[derive(Clone)]
pub struct WebhookSecret {
    key: hmac::Key,
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(**redacted**)")
    }
}

/// Why a webhook secret was refused. Never carries the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookSecretError {
    /// The text after `whsec_` is not standard base64.
    #[error("webhook secret is not base64")]
    NotBase64,
    /// The decoded secret is not 24 to 64 bytes long.
    #[error("webhook secret must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")]
    WrongLength,
}

impl WebhookSecret {
    /// Parses a secret as providers show it: `whsec_` and standard base64
    /// (the prefix is optional, as in the reference libraries).
    ///
    /// # Errors
    ///
    /// [`WebhookSecretError`] when the text is not base64 or the secret is
    /// not 24 to 64 bytes.
    pub fn parse(text: &str) -> Result<Self, WebhookSecretError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        // One byte of room, so that an overlong secret is told from bad base64.
        let mut buffer = [0_u8; MAX_SECRET_BYTES + 3];
        let decoded = BASE64.decode_slice(encoded, &mut buffer);
        let result = match decoded {
            Ok(len) => buffer
                .get(..len)
                .ok_or(WebhookSecretError::WrongLength)
                .and_then(Self::from_bytes),
            Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
                Err(WebhookSecretError::WrongLength)
            }
            Err(base64::DecodeSliceError::DecodeError(_)) => Err(WebhookSecretError::NotBase64),
        };
        buffer.fill(0);
        result
    }

    /// A secret from its raw bytes.
    ///
    /// # Errors
    ///
    /// [`WebhookSecretError::WrongLength`] unless 24 to 64 bytes.
    pub fn from_bytes(secret: &[u8]) -> Result<Self, WebhookSecretError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret.len()) {
            return Err(WebhookSecretError::WrongLength);
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    fn tag(&self, id: &str, timestamp: &str, body: &[u8]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.as_bytes());
        context.update(b".");
        context.update(body);
        context.sign()
    }
}

/// Verifies Standard Webhooks deliveries: signature against any of
/// several secrets, timestamp tolerance, and a bounded replay cache.
///
/// Clones share one replay cache: keep one per endpoint, in the router
/// state.
#[derive(Clone)]
pub struct WebhookVerifier {
    secrets: Vec<WebhookSecret>,
    tolerance: i64,
    max_body: usize,
    clock: Arc<dyn Clock>,
    deliveries: Arc<Mutex<Deliveries>>,
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("secrets", &self.secrets.len())
            .field("tolerance_seconds", &self.tolerance)
            .field("max_body_bytes", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl WebhookVerifier {
    /// A verifier for one secret, with the system clock, a 5-minute
    /// tolerance, a 256 KiB body cap and room for
    /// [`DEFAULT_REPLAY_CAPACITY`] ids.
    #[must_use]
    pub fn new(secret: WebhookSecret) -> Self {
        Self {
            secrets: vec![secret],
            tolerance: i64::from(DEFAULT_TOLERANCE_SECONDS),
            max_body: DEFAULT_MAX_BODY_BYTES,
            clock: Arc::new(SystemTime),
            deliveries: Arc::new(Mutex::new(Deliveries {
                seen: ReplayCache::new(DEFAULT_REPLAY_CAPACITY),
                in_flight: HashSet::new(),
            })),
        }
    }

    /// Also accepts signatures by `secret`: during a rotation, configure
    /// the old and the new secret until the provider signs with the new one
    /// only.
    #[must_use]
    pub fn with_secret(mut self, secret: WebhookSecret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// How far, in seconds, the timestamp may lie from now, either way (at
    /// least 1). Ids are remembered as long as their timestamp is within it.
    #[must_use]
    pub fn with_tolerance_seconds(mut self, seconds: u32) -> Self {
        self.tolerance = i64::from(seconds.max(1));
        self
    }

    /// The largest body accepted, in bytes.
    #[must_use]
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        self.max_body = max;
        self
    }

    /// How many ids the replay cache holds (at least 1). When it is full of
    /// ids still within the tolerance, deliveries are refused with
    /// [`WebhookError::ReplayCacheFull`] (503, and the provider retries)
    /// rather than risk a replay.
    #[must_use]
    pub fn with_replay_capacity(mut self, capacity: usize) -> Self {
        self.deliveries = Arc::new(Mutex::new(Deliveries {
            seen: ReplayCache::new(capacity),
            in_flight: HashSet::new(),
        }));
        self
    }

    /// The clock the tolerance is measured with (tests pin it).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The body cap, in bytes.
    #[must_use]
    pub fn max_body_bytes(&self) -> usize {
        self.max_body
    }

    /// Verifies one delivery: headers, body size, signature, timestamp,
    /// then the replay cache.
    ///
    /// # Errors
    ///
    /// [`WebhookError`] naming the check that failed: a missing or
    /// malformed header, an oversized body, a bad signature, a timestamp
    /// out of tolerance, a replay, a delivery in progress, or a full cache.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, WebhookError> {
        if body.len() > self.max_body {
            return Err(WebhookError::TooLarge { max: self.max_body });
        }
        let svix = [WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE]
            .iter()
            .all(|name| !headers.contains_key(*name));
        let [id_name, timestamp_name, signature_name] = if svix {
            [SVIX_ID, SVIX_TIMESTAMP, SVIX_SIGNATURE]
        } else {
            [WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE]
        };
        let id = one_header(headers, id_name)?;
        let timestamp_text = one_header(headers, timestamp_name)?;
        let signatures = one_header(headers, signature_name)?;
        // No `.` in ids: with a digits-only timestamp, `{id}.{timestamp}.`
        // then splits one way only, so no two deliveries sign the same text.
        if id.is_empty()
            || id.len() > MAX_ID_BYTES
            || !id.bytes().all(|b| b.is_ascii_graphic() && b != b'.')
        {
            return Err(WebhookError::MalformedHeader(id_name));
        }
        let timestamp =
            parse_timestamp(timestamp_text).ok_or(WebhookError::MalformedHeader(timestamp_name))?;
        let candidates =
            parse_signatures(signatures).ok_or(WebhookError::MalformedHeader(signature_name))?;

        let authentic = self.secrets.iter().any(|secret| {
            let tag = secret.tag(id, timestamp_text, body);
            // Each comparison is constant-time; stopping at the first match
            // tells a sender only which of its own entries was right.
            candidates.iter().any(|candidate| {
                constant_time::verify_slices_are_equal(tag.as_ref(), candidate).is_ok()
            })
        });
        if !authentic {
            return Err(WebhookError::InvalidSignature);
        }

        // Authentic from here on.
        let now = self.clock.now().unix_timestamp();
        if now.saturating_sub(timestamp) > self.tolerance {
            return Err(WebhookError::TimestampTooOld);
        }
        if timestamp.saturating_sub(now) > self.tolerance {
            return Err(WebhookError::TimestampTooNew);
        }
        let key: Box<str> = id.into();
        let mut deliveries = self
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if deliveries.in_flight.contains(&key) {
            return Err(WebhookError::InProgress);
        }
        match deliveries
            .seen
            .admit(key.clone(), timestamp, now.saturating_sub(self.tolerance))
        {
            Ok(()) => {
                deliveries.in_flight.insert(key.clone());
                Ok(Delivery::New(NewDelivery {
                    id: key,
                    timestamp,
                    deliveries: Some(self.deliveries.clone()),
                }))
            }
            // A provider's attempts carry ever later timestamps: one not
            // later than the latest seen is a copy of an earlier delivery.
            Err(Refusal::Seen { at }) if timestamp <= at => Err(WebhookError::Replayed),
            Err(Refusal::Seen { .. }) => {
                // The provider's redelivery of an applied message: remember
                // the id as long as this delivery could be replayed.
                deliveries.seen.extend(&key, timestamp);
                Ok(Delivery::AlreadyApplied { id: key })
            }
            Err(Refusal::Full) => Err(WebhookError::ReplayCacheFull),
        }
    }
}

fn one_header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, WebhookError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(WebhookError::MissingHeader(name))?;
    if values.next().is_some() {
        return Err(WebhookError::MalformedHeader(name));
    }
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| WebhookError::MalformedHeader(name))
}

/// Unix seconds, digits only (no sign, no fraction), at most 12 of them.
fn parse_timestamp(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The `v1` tags of a signature header; `None` when the header is empty,
/// lists too many entries, or has an entry without a version. A `v1`
/// entry that is not a 32-byte base64 tag cannot match and is skipped, as
/// are other versions.
fn parse_signatures(header: &str) -> Option<Vec<[u8; TAG_BYTES]>> {
    let mut tags = Vec::new();
    let mut entries = 0_usize;
    for entry in header.split(' ').filter(|entry| !entry.is_empty()) {
        entries += 1;
        if entries > MAX_SIGNATURE_ENTRIES {
            return None;
        }
        let (version, encoded) = entry.split_once(',')?;
        if version.is_empty() {
            return None;
        }
        if version != "v1" {
            continue;
        }
        let mut buffer = [0_u8; TAG_BYTES + 3];
        if let Ok(TAG_BYTES) = BASE64.decode_slice(encoded, &mut buffer) {
            let mut tag = [0_u8; TAG_BYTES];
            tag.copy_from_slice(buffer.get(..TAG_BYTES)?);
            tags.push(tag);
        }
    }
    (entries > 0).then_some(tags)
}
