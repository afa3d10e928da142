//! Applying a provider's user webhooks: verify, decode, apply, answer.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Response, StatusCode};
use tessera_application::external::UserEventDecoder;
use tessera_application::{ApplyUserEvent, UserEventOutcome};
use tessera_domain::Role;
use time::OffsetDateTime;

use super::WebhookError;
use super::deliveries::Delivery;
use super::signature::WebhookVerifier;
use crate::HttpRefusal as _;

/// What a verified webhook did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookOutcome {
    /// The event was applied (or was of a type not acted on).
    Applied(UserEventOutcome),
    /// A redelivery of a message already applied; nothing done.
    AlreadyApplied,
}

/// A provider's user webhook endpoint (the state of the framework
/// adapters' webhook handlers): a verifier, the provider's payload
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
    /// (see the [module docs](super#order)).
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
pub(super) fn after_delivery(timestamp: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(timestamp.saturating_add(1)).ok()
}

impl<R: Role> UserWebhook<R> {
    /// The largest body a delivery may have, in bytes: read at most this
    /// much, and pass [`WebhookError::TooLarge`] to
    /// [`respond`](Self::respond) for more.
    #[must_use]
    pub fn max_body_bytes(&self) -> usize {
        self.verifier.max_body_bytes()
    }

    /// Whether the request's `Content-Length` already says its body is over
    /// the cap, so that it can be refused before it is read.
    #[must_use]
    pub fn declares_too_large(&self, headers: &HeaderMap) -> bool {
        headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .is_some_and(|len| len > u64::try_from(self.max_body_bytes()).unwrap_or(u64::MAX))
    }

    /// The answer to one delivery, whose body the framework adapter read
    /// (or could not read within the cap): 204 when the event is applied
    /// (or needs nothing), and otherwise as the table in the
    /// [module docs](super) says. The reason goes to `tracing` (warn, error
    /// for 503s), never the body or a secret.
    pub async fn respond(
        &self,
        headers: &HeaderMap,
        body: Result<&[u8], WebhookError>,
    ) -> Response<Bytes> {
        let result = match body {
            Ok(body) => self.handle(headers, body).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(outcome) => {
                tracing::debug!(?outcome, "webhook applied");
                let mut response = Response::new(Bytes::new());
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
                error.into_http()
            }
        }
    }
}
