//! Identity-provider webhooks: [Standard Webhooks] signatures (the scheme
//! Svix, and so Clerk, uses) verified, and user created / updated / deleted
//! events applied to the local directory.
//!
//! # The scheme
//!
//! A delivery carries three headers, `webhook-id`, `webhook-timestamp`
//! (Unix seconds) and `webhook-signature` (Svix's `svix-id`,
//! `svix-timestamp` and `svix-signature` are read when none of the
//! `webhook-*` ones is present). The signature header is a space-separated
//! list of `v1,<base64>` entries, each an HMAC-SHA256 over
//! `{id}.{timestamp}.{raw body}`; the delivery is authentic when any `v1`
//! entry matches any configured secret (several during a rotation).
//! Entries of other versions (`v1a,…`) are skipped. Tags are compared in
//! constant time.
//!
//! # Statuses
//!
//! | outcome | status | body `error` |
//! |---|---|---|
//! | applied, an event type not acted on, or an event overtaken by a newer one or by the user's deletion (see [Order](#order)) | 204 | — |
//! | a redelivery of a message already applied (same id, new timestamp) | 204, not applied again | — |
//! | a header missing, repeated or malformed | 400 | `missing_header` / `malformed_header` |
//! | body over the cap | 413 | `payload_too_large` |
//! | no entry matches any secret | 401 | `invalid_signature` |
//! | timestamp outside the tolerance (checked after the signature) | 401 | `timestamp_too_old` / `timestamp_too_new` |
//! | the same delivery again (same id and timestamp) | 409 | `replayed` |
//! | the same id while its first delivery is still being applied | 409 | `in_progress` |
//! | authentic but unreadable payload, or an unmappable role | 400 | `invalid_payload` |
//! | replay cache full, directory or revocation store failing | 503 | `temporarily_unavailable` |
//!
//! Why these: a stale timestamp fails authentication as a bad signature
//! does (401). Providers retry every non-2xx with the **same id and a fresh
//! timestamp and signature**, so a second delivery of an id whose
//! timestamp is not later than the last one seen can only be a copy someone
//! captured, and gets 409 (a conflict with the state, not
//! a malformed request: 400 would send an operator looking for a bug in the
//! sender). A provider's own redelivery of a message already applied (its
//! copy of our 2xx was lost) is acknowledged with 204 without applying it
//! again, so that the provider stops retrying instead of retrying until the
//! id leaves the cache and applying an old event late. An id is recorded
//! only once its event is applied: a delivery that fails (400 payload, 503)
//! leaves no trace, so the provider's retry is applied normally.
//!
//! # Order
//!
//! Deliveries are applied as they come, and providers deliver in no
//! particular order: the directory puts events back in the provider's order
//! by the instants they carry (see
//! [`ExternalUserDirectory`](tessera_application::external::ExternalUserDirectory#ordering-and-deletions)),
//! so that an older update arriving late changes nothing and an update
//! arriving after the deletion does not bring the user back. An event
//! whose payload carries no instant is dated by its delivery
//! ([`UserEvent::dated_by_delivery`](tessera_application::external::UserEvent::dated_by_delivery)):
//! the `webhook-timestamp`, rounded up to the next second, which is after
//! the change on the provider's clock, so that a token minted before it
//! (an admin token after a demotion) is stale. An update so dated never
//! recreates a deleted user
//! ([`AsOf::Delivery`](tessera_application::external::AsOf::Delivery)).
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::{constant_time, hmac};
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use tessera_application::external::{UserEventDecoder, UserEventError};
use tessera_application::ports::Clock;
use tessera_application::{ApplyUserEvent, ApplyUserEventError, UserEventOutcome};
use tessera_domain::Role;
use time::OffsetDateTime;

use crate::gateway::SystemTime;
use crate::replay::{Refusal, ReplayCache};

/// The message id header.
pub const WEBHOOK_ID: &str = "webhook-id";
/// The timestamp header (Unix seconds).
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// The signature header (space-separated `v1,<base64>` entries).
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// Svix's name for [`WEBHOOK_ID`].
pub const SVIX_ID: &str = "svix-id";
/// Svix's name for [`WEBHOOK_TIMESTAMP`].
pub const SVIX_TIMESTAMP: &str = "svix-timestamp";
/// Svix's name for [`WEBHOOK_SIGNATURE`].
pub const SVIX_SIGNATURE: &str = "svix-signature";

/// The shortest secret accepted, in decoded bytes (the Standard Webhooks
/// range is 24 to 64).
pub const MIN_SECRET_BYTES: usize = 24;
/// The longest secret accepted, in decoded bytes.
pub const MAX_SECRET_BYTES: usize = 64;
/// The default timestamp tolerance, in seconds, either side of now.
pub const DEFAULT_TOLERANCE_SECONDS: u32 = 300;
/// The default body cap, in bytes (a provider's user object is a few KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// The default number of message ids the replay cache holds.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;
/// The longest message id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// The most entries a signature header may list.
pub const MAX_SIGNATURE_ENTRIES: usize = 16;

const SECRET_PREFIX: &str = "whsec_";
const TAG_BYTES: usize = 32;
/// Standard base64, padding optional (providers and libraries differ).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

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

/// Why a webhook delivery was refused, or could not be applied.
///
/// Each variant has a stable [`code`](Self::code) and a
/// [`status`](Self::status); see the table in the [module docs](self).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A required header is absent.
    #[error("webhook header {0} is missing")]
    MissingHeader(&'static str),
    /// A header is repeated, not text, or not of its form.
    #[error("webhook header {0} is repeated or malformed")]
    MalformedHeader(&'static str),
    /// The body is larger than the cap (or could not be read whole).
    #[error("webhook body is larger than {max} bytes")]
    TooLarge {
        /// The cap, in bytes.
        max: usize,
    },
    /// No `v1` entry matches any configured secret.
    #[error("webhook signature does not verify")]
    InvalidSignature,
    /// The timestamp is older than the tolerance allows.
    #[error("webhook timestamp is too old")]
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance allows.
    #[error("webhook timestamp is too far in the future")]
    TimestampTooNew,
    /// A delivery with this id and this or a later timestamp was already
    /// accepted: a copy of an earlier delivery.
    #[error("webhook delivery was already received")]
    Replayed,
    /// A delivery with this id is being applied right now.
    #[error("webhook message is being applied by another delivery")]
    InProgress,
    /// The replay cache is full of ids within the window: fail closed.
    #[error("webhook replay cache is full")]
    ReplayCacheFull,
    /// The authentic payload cannot be read as a user event, or its role
    /// cannot be mapped.
    #[error("webhook payload cannot be applied")]
    Payload(#[source] UserEventError),
    /// The directory or the revocation store failed; the provider should
    /// deliver again.
    #[error("webhook event could not be applied")]
    Apply(#[source] ApplyUserEventError),
}

impl WebhookError {
    /// A stable, machine-readable code, also the response body's `error`
    /// (except for 503s, which say `temporarily_unavailable`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::MalformedHeader(_) => "malformed_header",
            Self::TooLarge { .. } => "payload_too_large",
            Self::InvalidSignature => "invalid_signature",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::TimestampTooNew => "timestamp_too_new",
            Self::Replayed => "replayed",
            Self::InProgress => "in_progress",
            Self::ReplayCacheFull => "replay_cache_full",
            Self::Payload(_) => "invalid_payload",
            Self::Apply(_) => "apply_failed",
        }
    }

    /// The response status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingHeader(_) | Self::MalformedHeader(_) | Self::Payload(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidSignature | Self::TimestampTooOld | Self::TimestampTooNew => {
                StatusCode::UNAUTHORIZED
            }
            Self::Replayed | Self::InProgress => StatusCode::CONFLICT,
            Self::ReplayCacheFull | Self::Apply(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for WebhookError {
    /// The [`status`](WebhookError::status), `Cache-Control: no-store` and
    /// `{"error":"<code>"}`; the cause goes to `tracing`, not the body.
    fn into_response(self) -> Response {
        let status = self.status();
        let code = if status == StatusCode::SERVICE_UNAVAILABLE {
            "temporarily_unavailable"
        } else {
            self.code()
        };
        let mut response = Response::new(Body::from(format!("{{\"error\":\"{code}\"}}")));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

#[derive(Debug)]
struct Deliveries {
    /// Ids applied or being applied, by their latest timestamp.
    seen: ReplayCache<Box<str>>,
    /// Ids being applied.
    in_flight: HashSet<Box<str>>,
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

/// A verified delivery.
#[derive(Debug)]
#[must_use = "a new delivery is forgotten unless completed"]
pub enum Delivery {
    /// Seen for the first time: apply it, then
    /// [`complete`](NewDelivery::complete) it.
    New(NewDelivery),
    /// The provider's redelivery (same id, new timestamp) of a message
    /// already applied: acknowledge it without applying it again.
    AlreadyApplied {
        /// The message id.
        id: Box<str>,
    },
}

/// A first delivery of a message, reserved in the replay cache.
///
/// [`complete`](Self::complete) it once applied; dropping it without doing
/// so forgets the id, so that the provider's retry is accepted.
#[derive(Debug)]
#[must_use = "a new delivery is forgotten unless completed"]
pub struct NewDelivery {
    id: Box<str>,
    timestamp: i64,
    deliveries: Option<Arc<Mutex<Deliveries>>>,
}

impl NewDelivery {
    /// The message id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The delivery's timestamp, in Unix seconds.
    #[must_use]
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Records the message as applied: later deliveries of its id are not
    /// applied again while it is within the tolerance.
    pub fn complete(mut self) {
        if let Some(deliveries) = self.deliveries.take() {
            deliveries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .in_flight
                .remove(&self.id);
        }
    }
}

impl Drop for NewDelivery {
    fn drop(&mut self) {
        if let Some(deliveries) = self.deliveries.take() {
            let mut deliveries = deliveries.lock().unwrap_or_else(PoisonError::into_inner);
            deliveries.in_flight.remove(&self.id);
            deliveries.seen.forget(&self.id);
        }
    }
}

/// What a verified webhook did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookOutcome {
    /// The event was applied (or was of a type not acted on).
    Applied(UserEventOutcome),
    /// A redelivery of a message already applied; nothing done.
    AlreadyApplied,
}

/// The state of [`user_webhook`]: a verifier, the provider's payload
/// decoder and the [`ApplyUserEvent`] use case.
#[derive(Clone)]
pub struct UserWebhook<R: Role> {
    verifier: WebhookVerifier,
    decoder: Arc<dyn UserEventDecoder<R>>,
    apply: ApplyUserEvent<R>,
}

impl<R: Role> fmt::Debug for UserWebhook<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserWebhook")
            .field("verifier", &self.verifier)
            .field("apply", &self.apply)
            .finish_non_exhaustive()
    }
}

impl<R: Role> UserWebhook<R> {
    /// Wires the webhook to a verifier, a decoder and the use case.
    #[must_use]
    pub fn new(
        verifier: WebhookVerifier,
        decoder: Arc<dyn UserEventDecoder<R>>,
        apply: ApplyUserEvent<R>,
    ) -> Self {
        Self {
            verifier,
            decoder,
            apply,
        }
    }

    /// Verifies one delivery, decodes it and applies it. The id is recorded
    /// only when the event is applied. An event the payload does not date
    /// is dated by the delivery's timestamp, rounded up to the next second
    /// (see the [module docs](self#order)).
    ///
    /// # Errors
    ///
    /// [`WebhookError`]: the verifier's refusals,
    /// [`WebhookError::Payload`] for an unreadable payload or unmappable
    /// role, [`WebhookError::Apply`] when the directory or the revocation
    /// store fails.
    pub async fn handle(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookOutcome, WebhookError> {
        let delivery = match self.verifier.verify(headers, body)? {
            Delivery::New(delivery) => delivery,
            Delivery::AlreadyApplied { .. } => return Ok(WebhookOutcome::AlreadyApplied),
        };
        let event = self.decoder.decode(body).map_err(WebhookError::Payload)?;
        let event = match after_delivery(delivery.timestamp()) {
            Some(delivered) => event.dated_by_delivery(delivered),
            None => event,
        };
        let outcome = self
            .apply
            .execute(event)
            .await
            .map_err(WebhookError::Apply)?;
        delivery.complete();
        Ok(WebhookOutcome::Applied(outcome))
    }
}

/// The first whole second after a delivery made at `timestamp` (Unix
/// seconds, rounded down by the sender): later than anything the delivery
/// reports, on the sender's clock. `None` off the calendar.
fn after_delivery(timestamp: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(timestamp.saturating_add(1)).ok()
}

/// An axum handler for a provider's user webhooks: mount it as
/// `post(user_webhook::<YourRole>)` with a [`UserWebhook`] as state, on a
/// route the session layer treats as public.
///
/// Answers 204 when the event is applied (or needs nothing), and otherwise
/// as the table in the [module docs](self) says. The reason goes to
/// `tracing` (warn, error for 503s), never the body or a secret.
pub async fn user_webhook<R: Role>(
    State(hook): State<UserWebhook<R>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = match read_body(&headers, body, hook.verifier.max_body_bytes()).await {
        Ok(body) => hook.handle(&headers, &body).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(outcome) => {
            tracing::debug!(?outcome, "webhook applied");
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        Err(error) => {
            if error.status() == StatusCode::SERVICE_UNAVAILABLE {
                tracing::error!(
                    code = error.code(),
                    error = &error as &dyn std::error::Error,
                    "webhook not applied"
                );
            } else {
                tracing::warn!(
                    code = error.code(),
                    error = &error as &dyn std::error::Error,
                    "webhook refused"
                );
            }
            error.into_response()
        }
    }
}

/// The body, refused early on a `Content-Length` over the cap; a read
/// error (the limit, or a client gone) counts as too large.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<axum::body::Bytes, WebhookError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|len| len > u64::try_from(max).unwrap_or(u64::MAX)) {
        return Err(WebhookError::TooLarge { max });
    }
    axum::body::to_bytes(body, max)
        .await
        .map_err(|_| WebhookError::TooLarge { max })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use axum::Router;
    use axum::routing::post;
    use base64::engine::general_purpose::STANDARD;
    use http::Request;
    use mockall::predicate::eq;
    use tessera_application::RevokeSession;
    use tessera_application::external::{
        AsOf, ExternalProfile, ExternalSubject, ExternalUser, MockExternalUserDirectory,
        MockUserEventDecoder, UpsertOutcome, Upserted, UserEvent,
    };
    use tessera_application::ports::{
        DirectoryError, DirectoryUser, MockClock, MockRevocationStore,
    };
    use tessera_domain::{SessionLifetimes, UserId, UserRole};
    use tower::ServiceExt as _;

    use super::*;

    const NOW: i64 = 1_700_000_000;
    const SECRET_A: &[u8] = b"first-secret-of-24-bytes";
    const SECRET_B: &[u8] = b"second-secret-with-more-than-24-bytes";
    const SECRET_C: &[u8] = b"a-secret-nobody-configured";
    const ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
    const BODY: &[u8] = br#"{"type":"user.updated","data":{"id":"user_1"}}"#;

    #[derive(Debug)]
    struct Pinned(AtomicI64);

    impl Clock for Pinned {
        fn now(&self) -> OffsetDateTime {
            OffsetDateTime::from_unix_timestamp(self.0.load(Ordering::SeqCst)).unwrap()
        }
    }

    use time::OffsetDateTime;

    fn pinned() -> Arc<Pinned> {
        Arc::new(Pinned(AtomicI64::new(NOW)))
    }

    /// `v1,<base64>` computed with aws-lc-rs directly over the spec's
    /// concatenation, not through the code under test.
    fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut message = format!("{id}.{timestamp}.").into_bytes();
        message.extend_from_slice(body);
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), &message);
        format!("v1,{}", STANDARD.encode(tag.as_ref()))
    }

    fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(WEBHOOK_ID, HeaderValue::from_str(id).unwrap());
        headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp));
        headers.insert(WEBHOOK_SIGNATURE, HeaderValue::from_str(signature).unwrap());
        headers
    }

    fn signed(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> HeaderMap {
        headers(id, timestamp, &sign(secret, id, timestamp, body))
    }

    fn verifier(clock: Arc<Pinned>) -> WebhookVerifier {
        WebhookVerifier::new(WebhookSecret::from_bytes(SECRET_A).unwrap()).with_clock(clock)
    }

    fn accept(v: &WebhookVerifier, headers: &HeaderMap, body: &[u8]) {
        match v.verify(headers, body) {
            Ok(Delivery::New(delivery)) => delivery.complete(),
            other => panic!("expected a new delivery, got {other:?}"),
        }
    }

    fn refusal(v: &WebhookVerifier, headers: &HeaderMap, body: &[u8]) -> &'static str {
        match v.verify(headers, body) {
            Err(error) => error.code(),
            Ok(delivery) => panic!("expected a refusal, got {delivery:?}"),
        }
    }

    #[test]
    fn the_standard_webhooks_test_vector_verifies() {
        // From the Standard Webhooks / Svix reference libraries' tests.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let clock = Arc::new(Pinned(AtomicI64::new(1_614_265_330)));
        let v = WebhookVerifier::new(secret).with_clock(clock);
        let headers = headers(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        );
        accept(&v, &headers, br#"{"test": 2432232314}"#);
        // And the independent signer agrees with it.
        let raw = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &raw,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_valid_signature_is_accepted() {
        let v = verifier(pinned());
        match v.verify(&signed(SECRET_A, ID, NOW, BODY), BODY).unwrap() {
            Delivery::New(delivery) => {
                assert_eq!((delivery.id(), delivery.timestamp()), (ID, NOW));
                delivery.complete();
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_secret_of_a_rotation_is_accepted_and_no_other() {
        let v = verifier(pinned()).with_secret(WebhookSecret::from_bytes(SECRET_B).unwrap());
        accept(&v, &signed(SECRET_A, "msg_a", NOW, BODY), BODY);
        accept(&v, &signed(SECRET_B, "msg_b", NOW, BODY), BODY);
        assert_eq!(
            refusal(&v, &signed(SECRET_C, "msg_c", NOW, BODY), BODY),
            "invalid_signature"
        );
        // Old and new signatures side by side, as a provider sends during
        // its own rotation, against a receiver that knows only the new one.
        let v =
            WebhookVerifier::new(WebhookSecret::from_bytes(SECRET_B).unwrap()).with_clock(pinned());
        let both = format!(
            "{} {}",
            sign(SECRET_A, ID, NOW, BODY),
            sign(SECRET_B, ID, NOW, BODY)
        );
        accept(&v, &headers(ID, NOW, &both), BODY);
    }

    #[test]
    fn a_wrong_secret_is_refused() {
        let v = verifier(pinned());
        assert_eq!(
            refusal(&v, &signed(SECRET_B, ID, NOW, BODY), BODY),
            "invalid_signature"
        );
    }

    #[test]
    fn a_tampered_body_id_or_timestamp_breaks_the_signature() {
        let v = verifier(pinned());
        let good = sign(SECRET_A, ID, NOW, BODY);
        let tampered_body = br#"{"type":"user.updated","data":{"id":"user_2"}}"#;
        assert_eq!(
            refusal(&v, &headers(ID, NOW, &good), tampered_body),
            "invalid_signature"
        );
        assert_eq!(
            refusal(&v, &headers("msg_other", NOW, &good), BODY),
            "invalid_signature"
        );
        assert_eq!(
            refusal(&v, &headers(ID, NOW + 1, &good), BODY),
            "invalid_signature"
        );
        // Nothing was recorded: the genuine delivery still goes through.
        accept(&v, &headers(ID, NOW, &good), BODY);
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused_either_way() {
        let v = verifier(pinned());
        assert_eq!(
            refusal(&v, &signed(SECRET_A, "msg_old", NOW - 301, BODY), BODY),
            "timestamp_too_old"
        );
        assert_eq!(
            refusal(&v, &signed(SECRET_A, "msg_new", NOW + 301, BODY), BODY),
            "timestamp_too_new"
        );
        accept(&v, &signed(SECRET_A, "msg_old", NOW - 300, BODY), BODY);
        accept(&v, &signed(SECRET_A, "msg_new", NOW + 300, BODY), BODY);
        let strict = verifier(pinned()).with_tolerance_seconds(10);
        assert_eq!(
            refusal(&strict, &signed(SECRET_A, ID, NOW - 11, BODY), BODY),
            "timestamp_too_old"
        );
    }

    #[test]
    fn a_replayed_delivery_is_refused_and_a_provider_redelivery_is_not_applied_again() {
        let v = verifier(pinned());
        let first = signed(SECRET_A, ID, NOW, BODY);
        accept(&v, &first, BODY);
        assert_eq!(refusal(&v, &first, BODY), "replayed");
        // Clones share the cache.
        assert_eq!(refusal(&v.clone(), &first, BODY), "replayed");
        // The provider's retry: same id, fresh timestamp and signature.
        let retry = signed(SECRET_A, ID, NOW + 5, BODY);
        assert!(matches!(
            v.verify(&retry, BODY),
            Ok(Delivery::AlreadyApplied { id }) if &*id == ID
        ));
        // Copies of either delivery are replays.
        assert_eq!(refusal(&v, &first, BODY), "replayed");
        assert_eq!(refusal(&v, &retry, BODY), "replayed");
    }

    #[test]
    fn a_delivery_in_progress_blocks_its_id_and_an_abandoned_one_is_forgotten() {
        let v = verifier(pinned());
        let first = signed(SECRET_A, ID, NOW, BODY);
        let Ok(Delivery::New(delivery)) = v.verify(&first, BODY) else {
            panic!("expected a new delivery");
        };
        assert_eq!(
            refusal(&v, &signed(SECRET_A, ID, NOW + 1, BODY), BODY),
            "in_progress"
        );
        drop(delivery);
        // Not applied, so the provider's retry (or the very same bytes) is
        // accepted again.
        accept(&v, &first, BODY);
    }

    #[test]
    fn the_replay_cache_forgets_ids_after_the_tolerance() {
        let clock = pinned();
        let v = verifier(clock.clone());
        let first = signed(SECRET_A, ID, NOW, BODY);
        accept(&v, &first, BODY);
        clock.0.store(NOW + 301, Ordering::SeqCst);
        // The captured copy is now stale, so forgetting its id is safe …
        assert_eq!(refusal(&v, &first, BODY), "timestamp_too_old");
        // … and a delivery signed now with that id is new again.
        accept(&v, &signed(SECRET_A, ID, NOW + 301, BODY), BODY);
    }

    #[test]
    fn a_redelivery_keeps_its_id_remembered_as_long_as_it_could_be_replayed() {
        let clock = pinned();
        let v = verifier(clock.clone());
        accept(&v, &signed(SECRET_A, ID, NOW, BODY), BODY);
        let retry = signed(SECRET_A, ID, NOW + 200, BODY);
        assert!(matches!(
            v.verify(&retry, BODY),
            Ok(Delivery::AlreadyApplied { .. })
        ));
        clock.0.store(NOW + 400, Ordering::SeqCst);
        assert_eq!(refusal(&v, &retry, BODY), "replayed");
    }

    #[test]
    fn a_full_replay_cache_fails_closed_until_ids_age_out() {
        let clock = pinned();
        let v = verifier(clock.clone()).with_replay_capacity(1);
        accept(&v, &signed(SECRET_A, "msg_1", NOW, BODY), BODY);
        assert_eq!(
            refusal(&v, &signed(SECRET_A, "msg_2", NOW, BODY), BODY),
            "replay_cache_full"
        );
        clock.0.store(NOW + 301, Ordering::SeqCst);
        accept(&v, &signed(SECRET_A, "msg_2", NOW + 301, BODY), BODY);
    }

    #[test]
    fn missing_repeated_or_malformed_headers_are_refused() {
        let v = verifier(pinned());
        let good = signed(SECRET_A, ID, NOW, BODY);
        for name in [WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE] {
            let mut headers = good.clone();
            headers.remove(name);
            assert!(matches!(
                v.verify(&headers, BODY),
                Err(WebhookError::MissingHeader(n)) if n == name
            ));
            let mut headers = good.clone();
            headers.append(name, headers[name].clone());
            assert!(matches!(
                v.verify(&headers, BODY),
                Err(WebhookError::MalformedHeader(n)) if n == name
            ));
        }
        assert_eq!(refusal(&v, &HeaderMap::new(), BODY), "missing_header");
        for timestamp in ["", "abc", "-5", "+5", "1.5", "1700000000000000"] {
            let mut headers = good.clone();
            headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from_static(timestamp));
            assert_eq!(
                refusal(&v, &headers, BODY),
                "malformed_header",
                "{timestamp}"
            );
        }
        let long_id = "m".repeat(MAX_ID_BYTES + 1);
        for id in ["", "msg.1", long_id.as_str()] {
            let mut headers = good.clone();
            headers.insert(WEBHOOK_ID, HeaderValue::from_str(id).unwrap());
            assert_eq!(refusal(&v, &headers, BODY), "malformed_header", "{id}");
        }
        let too_many = vec!["v1a,AAAA"; MAX_SIGNATURE_ENTRIES + 1].join(" ");
        for signature in ["", "   ", "v1", ",abc", too_many.as_str()] {
            let mut headers = good.clone();
            headers.insert(WEBHOOK_SIGNATURE, HeaderValue::from_str(signature).unwrap());
            assert_eq!(
                refusal(&v, &headers, BODY),
                "malformed_header",
                "{signature}"
            );
        }
        let mut headers = good.clone();
        headers.insert(WEBHOOK_ID, HeaderValue::from_bytes(b"msg_\xff").unwrap());
        assert_eq!(refusal(&v, &headers, BODY), "malformed_header");
    }

    #[test]
    fn any_matching_v1_entry_is_enough_and_other_versions_never_count() {
        let v = verifier(pinned());
        let good = sign(SECRET_A, ID, NOW, BODY);
        let tag = good.trim_start_matches("v1,");
        let wrong = sign(SECRET_B, ID, NOW, BODY);
        // An unknown version carrying the right bytes does not count.
        assert_eq!(
            refusal(&v, &headers(ID, NOW, &format!("v1a,{tag} v2,{tag}")), BODY),
            "invalid_signature"
        );
        // Garbage and wrong v1 entries beside the right one are skipped.
        let mixed = format!("v1a,{tag} v1,not-base64! v1,AAAA {wrong}  {good}");
        accept(&v, &headers(ID, NOW, &mixed), BODY);
        // The tag without padding is the same tag.
        let unpadded = signed(SECRET_A, "msg_unpadded", NOW, BODY);
        let text = unpadded[WEBHOOK_SIGNATURE]
            .to_str()
            .unwrap()
            .trim_end_matches('=');
        accept(&v, &headers("msg_unpadded", NOW, text), BODY);
    }

    #[test]
    fn svix_header_names_are_read_when_no_webhook_ones_are_sent() {
        let v = verifier(pinned());
        let mut headers = HeaderMap::new();
        headers.insert(SVIX_ID, HeaderValue::from_static(ID));
        headers.insert(SVIX_TIMESTAMP, HeaderValue::from(NOW));
        headers.insert(
            SVIX_SIGNATURE,
            HeaderValue::from_str(&sign(SECRET_A, ID, NOW, BODY)).unwrap(),
        );
        accept(&v, &headers, BODY);
        // Mixed sets are not combined.
        headers.insert(WEBHOOK_ID, HeaderValue::from_static("msg_x"));
        assert_eq!(refusal(&v, &headers, BODY), "missing_header");
    }

    #[test]
    fn an_oversized_body_is_refused_before_anything_else() {
        let v = verifier(pinned()).with_max_body_bytes(BODY.len() - 1);
        assert!(matches!(
            v.verify(&signed(SECRET_A, ID, NOW, BODY), BODY),
            Err(WebhookError::TooLarge { max }) if max == BODY.len() - 1
        ));
        let v = verifier(pinned()).with_max_body_bytes(BODY.len());
        accept(&v, &signed(SECRET_A, ID, NOW, BODY), BODY);
    }

    #[test]
    fn secrets_parse_in_the_providers_form_and_never_print() {
        let encoded = STANDARD.encode(SECRET_A);
        assert!(WebhookSecret::parse(&format!("whsec_{encoded}")).is_ok());
        assert!(WebhookSecret::parse(&encoded).is_ok());
        assert_eq!(
            WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([1_u8; 23]))).unwrap_err(),
            WebhookSecretError::WrongLength
        );
        assert!(WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([1_u8; 64]))).is_ok());
        assert_eq!(
            WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([1_u8; 65]))).unwrap_err(),
            WebhookSecretError::WrongLength
        );
        assert_eq!(
            WebhookSecret::parse("whsec_not base64!").unwrap_err(),
            WebhookSecretError::NotBase64
        );
        let secret = WebhookSecret::from_bytes(SECRET_A).unwrap();
        assert_eq!(format!("{secret:?}"), "WebhookSecret(**redacted**)");
        let printed = format!("{:?}", verifier(pinned()));
        assert!(!printed.contains("first-secret"), "{printed}");
        assert!(!printed.contains(&encoded), "{printed}");
    }

    #[tokio::test]
    async fn every_error_has_its_status_and_body() {
        let cases = [
            (
                WebhookError::MissingHeader(WEBHOOK_ID),
                400,
                "missing_header",
            ),
            (
                WebhookError::MalformedHeader(WEBHOOK_ID),
                400,
                "malformed_header",
            ),
            (WebhookError::TooLarge { max: 1 }, 413, "payload_too_large"),
            (WebhookError::InvalidSignature, 401, "invalid_signature"),
            (WebhookError::TimestampTooOld, 401, "timestamp_too_old"),
            (WebhookError::TimestampTooNew, 401, "timestamp_too_new"),
            (WebhookError::Replayed, 409, "replayed"),
            (WebhookError::InProgress, 409, "in_progress"),
            (
                WebhookError::ReplayCacheFull,
                503,
                "temporarily_unavailable",
            ),
            (
                WebhookError::Payload(UserEventError::Malformed("data")),
                400,
                "invalid_payload",
            ),
        ];
        for (error, status, code) in cases {
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
            let body = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .unwrap();
            assert_eq!(body, format!("{{\"error\":\"{code}\"}}"));
        }
    }

    // The handler, with the use case's ports mocked.

    const ISSUER: &str = "https://idp.example";

    fn user() -> UserId {
        UserId::parse("0190b5a4-7c2e-7d3a-9f00-000000000001").unwrap()
    }

    fn subject() -> ExternalSubject {
        ExternalSubject::parse("user_1").unwrap()
    }

    /// A profile the payload dates (an hour before [`NOW`]).
    fn profile() -> ExternalProfile<UserRole> {
        ExternalProfile {
            issuer: ISSUER.into(),
            subject: subject(),
            role: UserRole::User,
            email: None,
            name: None,
            enabled: None,
            as_of: AsOf::Provider(OffsetDateTime::from_unix_timestamp(NOW - 3_600).unwrap()),
        }
    }

    fn stored() -> ExternalUser<UserRole> {
        ExternalUser {
            user: DirectoryUser {
                user_id: user(),
                role: UserRole::User,
                capabilities: std::collections::BTreeSet::new(),
                tenant: None,
                enabled: true,
            },
            issuer: ISSUER.into(),
            subject: subject(),
            email: None,
            name: None,
        }
    }

    fn hook(
        decoder: MockUserEventDecoder<UserRole>,
        users: MockExternalUserDirectory<UserRole>,
    ) -> UserWebhook<UserRole> {
        let mut store = MockRevocationStore::new();
        store.expect_set_watermark().times(0);
        let mut clock = MockClock::new();
        clock.expect_now().times(0);
        let lifetimes = SessionLifetimes::new(
            time::Duration::minutes(15),
            time::Duration::hours(8),
            time::Duration::minutes(10),
            time::Duration::seconds(30),
        )
        .unwrap();
        let revoke = RevokeSession::new(Arc::new(store), Arc::new(clock), lifetimes);
        UserWebhook::new(
            verifier(pinned()),
            Arc::new(decoder),
            ApplyUserEvent::new(Arc::new(users), revoke),
        )
    }

    fn decoding_once() -> MockUserEventDecoder<UserRole> {
        let mut decoder = MockUserEventDecoder::new();
        decoder
            .expect_decode()
            .with(eq(BODY))
            .times(1)
            .returning(|_| Ok(UserEvent::Upserted(profile())));
        decoder
    }

    #[tokio::test]
    async fn a_bad_signature_reaches_neither_the_decoder_nor_the_directory() {
        let mut decoder = MockUserEventDecoder::new();
        decoder.expect_decode().times(0);
        let mut users = MockExternalUserDirectory::new();
        users.expect_upsert_external().times(0);
        users.expect_delete_external().times(0);
        let hook = hook(decoder, users);
        let err = hook
            .handle(&signed(SECRET_C, ID, NOW, BODY), BODY)
            .await
            .unwrap_err();
        assert!(matches!(err, WebhookError::InvalidSignature));
    }

    #[tokio::test]
    async fn a_valid_delivery_is_applied_once_and_its_replay_is_refused() {
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_upsert_external()
            .with(eq(profile()))
            .times(1)
            .returning(|_| {
                Ok(UpsertOutcome::Written(Upserted {
                    current: stored(),
                    previous: None,
                }))
            });
        let hook = hook(decoding_once(), users);
        let headers = signed(SECRET_A, ID, NOW, BODY);
        assert_eq!(
            hook.handle(&headers, BODY).await.unwrap(),
            WebhookOutcome::Applied(UserEventOutcome::Created(user()))
        );
        assert!(matches!(
            hook.handle(&headers, BODY).await,
            Err(WebhookError::Replayed)
        ));
        assert_eq!(
            hook.handle(&signed(SECRET_A, ID, NOW + 60, BODY), BODY)
                .await
                .unwrap(),
            WebhookOutcome::AlreadyApplied
        );
    }

    #[tokio::test]
    async fn a_directory_failure_is_503_and_the_providers_retry_is_applied() {
        let mut users = MockExternalUserDirectory::new();
        let mut sequence = mockall::Sequence::new();
        users
            .expect_upsert_external()
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_| Err(DirectoryError::Unavailable("down".into())));
        users
            .expect_upsert_external()
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_| {
                Ok(UpsertOutcome::Written(Upserted {
                    current: stored(),
                    previous: None,
                }))
            });
        let mut decoder = MockUserEventDecoder::new();
        decoder
            .expect_decode()
            .times(2)
            .returning(|_| Ok(UserEvent::Upserted(profile())));
        let hook = hook(decoder, users);
        let err = hook
            .handle(&signed(SECRET_A, ID, NOW, BODY), BODY)
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(matches!(err, WebhookError::Apply(_)));
        assert!(matches!(
            hook.handle(&signed(SECRET_A, ID, NOW + 5, BODY), BODY)
                .await
                .unwrap(),
            WebhookOutcome::Applied(UserEventOutcome::Created(_))
        ));
    }

    #[tokio::test]
    async fn an_unreadable_payload_is_400_and_leaves_the_directory_alone() {
        let mut decoder = MockUserEventDecoder::new();
        decoder
            .expect_decode()
            .times(1)
            .returning(|_| Err(UserEventError::Malformed("type")));
        let mut users = MockExternalUserDirectory::new();
        users.expect_upsert_external().times(0);
        users.expect_delete_external().times(0);
        let err = hook(decoder, users)
            .handle(&signed(SECRET_A, ID, NOW, BODY), BODY)
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn the_axum_handler_answers_204_401_and_413() {
        let mut users = MockExternalUserDirectory::new();
        users.expect_upsert_external().times(1).returning(|_| {
            Ok(UpsertOutcome::Written(Upserted {
                current: stored(),
                previous: None,
            }))
        });
        let app = Router::new()
            .route("/hooks/users", post(user_webhook::<UserRole>))
            .with_state(hook(decoding_once(), users));
        let request = |headers: HeaderMap, body: Vec<u8>| {
            let mut request = Request::post("/hooks/users")
                .body(Body::from(body))
                .unwrap();
            *request.headers_mut() = headers;
            request
        };
        let ok = app
            .clone()
            .oneshot(request(signed(SECRET_A, ID, NOW, BODY), BODY.to_vec()))
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::NO_CONTENT);
        let bad = app
            .clone()
            .oneshot(request(signed(SECRET_C, "msg_2", NOW, BODY), BODY.to_vec()))
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
        let huge = vec![b' '; DEFAULT_MAX_BODY_BYTES + 1];
        let mut headers = signed(SECRET_A, "msg_3", NOW, &huge);
        let large = app
            .clone()
            .oneshot(request(headers.clone(), huge))
            .await
            .unwrap();
        assert_eq!(large.status(), StatusCode::PAYLOAD_TOO_LARGE);
        headers.insert(CONTENT_LENGTH, HeaderValue::from(u64::MAX));
        let declared = app.oneshot(request(headers, Vec::new())).await.unwrap();
        assert_eq!(declared.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    fn deleting(as_of: Option<OffsetDateTime>) -> MockUserEventDecoder<UserRole> {
        let mut decoder = MockUserEventDecoder::new();
        decoder.expect_decode().times(1).returning(move |_| {
            Ok(UserEvent::Deleted {
                issuer: ISSUER.into(),
                subject: subject(),
                as_of,
            })
        });
        decoder
    }

    #[tokio::test]
    async fn an_undated_deletion_is_dated_just_after_its_delivery() {
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_delete_external()
            .with(
                eq(ISSUER),
                eq(subject()),
                eq(Some(OffsetDateTime::from_unix_timestamp(NOW - 9).unwrap())),
            )
            .times(1)
            .returning(|_, _, _| Ok(None));
        let hook = hook(deleting(None), users);
        assert_eq!(
            hook.handle(&signed(SECRET_A, ID, NOW - 10, BODY), BODY)
                .await
                .unwrap(),
            WebhookOutcome::Applied(UserEventOutcome::Nothing)
        );
    }

    #[tokio::test]
    async fn dated_events_keep_what_the_payload_says_and_an_undated_update_is_dated_by_its_delivery()
     {
        let dated = OffsetDateTime::from_unix_timestamp(NOW - 3_600).unwrap();
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_delete_external()
            .with(eq(ISSUER), eq(subject()), eq(Some(dated)))
            .times(1)
            .returning(|_, _, _| Ok(None));
        let deletion = hook(deleting(Some(dated)), users);
        deletion
            .handle(&signed(SECRET_A, ID, NOW, BODY), BODY)
            .await
            .unwrap();

        let mut users = MockExternalUserDirectory::new();
        users
            .expect_upsert_external()
            .with(eq(profile()))
            .times(1)
            .returning(|_| Ok(UpsertOutcome::Stale(stored())));
        let dated = hook(decoding_once(), users);
        assert_eq!(
            dated
                .handle(&signed(SECRET_A, ID, NOW, BODY), BODY)
                .await
                .unwrap(),
            WebhookOutcome::Applied(UserEventOutcome::Stale(user()))
        );

        // Undated by its payload: dated just after its delivery.
        let undated = ExternalProfile {
            as_of: AsOf::Unknown,
            ..profile()
        };
        let mut decoder = MockUserEventDecoder::new();
        decoder
            .expect_decode()
            .times(1)
            .returning(move |_| Ok(UserEvent::Upserted(undated.clone())));
        let delivered = OffsetDateTime::from_unix_timestamp(NOW - 9).unwrap();
        let mut users = MockExternalUserDirectory::new();
        users
            .expect_upsert_external()
            .with(eq(ExternalProfile {
                as_of: AsOf::Delivery(delivered),
                ..profile()
            }))
            .times(1)
            .returning(|_| Ok(UpsertOutcome::Stale(stored())));
        hook(decoder, users)
            .handle(&signed(SECRET_A, ID, NOW - 10, BODY), BODY)
            .await
            .unwrap();
    }

    #[test]
    fn the_instant_after_a_delivery_is_its_next_second_or_none_off_the_calendar() {
        assert_eq!(
            after_delivery(NOW),
            Some(OffsetDateTime::from_unix_timestamp(NOW + 1).unwrap())
        );
        assert_eq!(after_delivery(999_999_999_999), None);
        assert_eq!(after_delivery(i64::MAX), None);
    }
}
