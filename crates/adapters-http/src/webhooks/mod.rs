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

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::StatusCode;
use tessera_application::ApplyUserEventError;
use tessera_application::external::UserEventError;

mod deliveries;
mod handler;
mod signature;
#[cfg(test)]
mod tests;

pub use self::deliveries::{Delivery, NewDelivery};
pub use self::handler::{UserWebhook, WebhookOutcome};
pub use self::signature::{WebhookSecret, WebhookSecretError, WebhookVerifier};

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

pub(crate) const SECRET_PREFIX: &str = "whsec_";
pub(crate) const TAG_BYTES: usize = 32;
/// Standard base64, padding optional (providers and libraries differ).
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

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

impl crate::HttpRefusal for WebhookError {
    /// The [`status`](WebhookError::status), `Cache-Control: no-store` and
    /// `{"error":"<code>"}`; the cause goes to `tracing`, not the body.
    fn into_http(self) -> http::Response<bytes::Bytes> {
        let status = self.status();
        let code = if status == StatusCode::SERVICE_UNAVAILABLE {
            "temporarily_unavailable"
        } else {
            self.code()
        };
        crate::response::json_error(status, code)
    }
}
