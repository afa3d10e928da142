//! A provider's user webhooks read as [`UserEvent`]s: the JSON event
//! envelope (`{"type": …, "data": {…}}`, Clerk's shape) with configurable
//! event names and paths, the role mapped by the provider's
//! [`ClaimMapping`].

use std::borrow::Cow;

use serde_json::Value;
use tessera_application::external::{
    AsOf, ExternalProfile, ExternalSubject, UserEvent, UserEventDecoder, UserEventError,
};
use tessera_domain::Role;
use time::OffsetDateTime;

use super::claim_path::{ClaimPath, MappingConfigError};
use super::mapping::ClaimMapping;
use super::payload::Leaf;

/// Reads a provider's user webhooks (already authenticated) as
/// [`UserEvent`]s.
///
/// The payload is `{"type": "<event>", "data": {<user object>}}`. Events
/// named as created or updated become [`UserEvent::Upserted`], the deleted
/// one [`UserEvent::Deleted`], any other [`UserEvent::Ignored`]. Paths into
/// `data` are dotted, and a numeric segment indexes an array
/// (`email_addresses.0.email_address`).
///
/// The defaults are Clerk's: `user.created`, `user.updated`,
/// `user.deleted`; the id at `id`, the email at
/// `email_addresses.0.email_address`, no name, disabled when `banned` is
/// true; the role at the mapping's role path. The role goes through the
/// mapping exactly as in tokens: a present role with no mapping is an
/// error, never a default.
///
/// # Ordering instants
///
/// Deliveries arrive at least once and out of order; the directory puts
/// them back in order by the provider's instants (see
/// [`ExternalUserDirectory`](tessera_application::external::ExternalUserDirectory#ordering-and-deletions)).
/// Both instants are JSON integers counting **milliseconds** since the
/// Unix epoch, as Clerk writes them; another type is a malformed payload.
///
/// - An upsert's [`as_of`](ExternalProfile::as_of) is an
///   [`AsOf::Provider`] read from `data`, at
///   `updated_at` by default ([`as_of_path`](Self::as_of_path)): the
///   instant of the state the event carries. Never a later instant: an
///   event's own time would let a retried older update beat a newer one.
///   When `data` has none, the upsert's instant is [`AsOf::Unknown`] here,
///   and whoever applies it dates it by its delivery
///   ([`UserEvent::dated_by_delivery`]: the webhook handler of
///   `tessera-http` does, with the delivery's signed timestamp rounded up
///   to the next second), so that no record is left undated and a token
///   minted before the change cannot write over it.
/// - A deletion's instant is the envelope's event time, at `timestamp` by
///   default ([`event_time_path`](Self::event_time_path)): Clerk's
///   `user.deleted` carries no user state, and the time the event was
///   made is at or after the deletion, the same for every retry of it,
///   signed with the body, and on the provider's clock like `updated_at`.
///   The delivery's `webhook-timestamp` header is not seen here: it is the
///   time of each attempt, in whole seconds, so it changes on every retry
///   and, rounded down, may fall before an update made in the same second.
///   When the envelope has no event time the deletion carries none, and
///   whoever applies it dates it (the webhook handler of `tessera-http`
///   uses the delivery's timestamp rounded up to the next second).
///
/// ```
/// use tessera_domain::UserRole;
/// use tessera_infrastructure::identity::{ClaimMapping, JsonUserEventDecoder, MissingRole};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mapping = ClaimMapping::new("public_metadata.role", MissingRole::LeastPrivilege(UserRole::User))?
///     .map("admin", UserRole::Admin)?;
/// let decoder = JsonUserEventDecoder::new("https://clerk.example.com", mapping)
///     .name_path(Some("username"))?;
/// # let _ = decoder;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct JsonUserEventDecoder<R> {
    issuer: String,
    mapping: ClaimMapping<R>,
    created: Box<str>,
    updated: Box<str>,
    deleted: Box<str>,
    id_path: Box<str>,
    role_path: Box<str>,
    email_path: Option<Box<str>>,
    name_path: Option<Box<str>>,
    disabled_path: Option<Box<str>>,
    as_of_path: Option<Box<str>>,
    event_time_path: Option<Box<str>>,
}

/// A path checked by [`ClaimPath::parse`], kept as text.
fn checked(path: &str) -> Result<Box<str>, MappingConfigError> {
    ClaimPath::parse(path).map(|path| path.as_str().into())
}

impl<R: Role> JsonUserEventDecoder<R> {
    /// A decoder for the provider `issuer` (as its tokens name it, so that
    /// webhooks and tokens find the same local user), with Clerk's
    /// defaults.
    #[must_use]
    pub fn new(issuer: impl Into<String>, mapping: ClaimMapping<R>) -> Self {
        let role_path = mapping.role_path().as_str().into();
        Self {
            issuer: issuer.into(),
            mapping,
            created: "user.created".into(),
            updated: "user.updated".into(),
            deleted: "user.deleted".into(),
            id_path: "id".into(),
            role_path,
            email_path: Some("email_addresses.0.email_address".into()),
            name_path: None,
            disabled_path: Some("banned".into()),
            as_of_path: Some("updated_at".into()),
            event_time_path: Some("timestamp".into()),
        }
    }

    /// The event names for created, updated and deleted users.
    #[must_use]
    pub fn event_types(mut self, created: &str, updated: &str, deleted: &str) -> Self {
        self.created = created.into();
        self.updated = updated.into();
        self.deleted = deleted.into();
        self
    }

    /// Where the provider's user id lives in `data`.
    ///
    /// # Errors
    ///
    /// [`MappingConfigError::InvalidPath`].
    pub fn id_path(mut self, path: &str) -> Result<Self, MappingConfigError> {
        self.id_path = checked(path)?;
        Ok(self)
    }

    /// Where the role lives in `data`, when not at the mapping's role path.
    ///
    /// # Errors
    ///
    /// [`MappingConfigError::InvalidPath`].
    pub fn role_path(mut self, path: &str) -> Result<Self, MappingConfigError> {
        self.role_path = checked(path)?;
        Ok(self)
    }

    /// Where the email lives in `data` (`None`: not read).
    ///
    /// # Errors
    ///
    /// [`MappingConfigError::InvalidPath`].
    pub fn email_path(mut self, path: Option<&str>) -> Result<Self, MappingConfigError> {
        self.email_path = path.map(checked).transpose()?;
        Ok(self)
    }

    /// Where the display name lives in `data` (`None`: not read).
    ///
    /// # Errors
    ///
    /// [`MappingConfigError::InvalidPath`].
    pub fn name_path(mut self, path: Option<&str>) -> Result<Self, MappingConfigError> {
        self.name_path = path.map(checked).transpose()?;
        Ok(self)
    }

    /// Where a boolean saying the user is disabled lives in `data` (`None`:
    /// the enabled state is left as stored).
    ///
    /// # Errors
    ///
    /// [`MappingConfigError::InvalidPath`].
    pub fn disabled_path(mut self, path: Option<&str>) -> Result<Self, MappingConfigError> {
        self.disabled_path = path.map(checked).transpose()?;
        Ok(self)
    }

    /// Where, in `data`, the instant of the user's state lives: when the
    /// provider last changed the user, in milliseconds since the Unix
    /// epoch (`None`: not read, and upserts are dated by their delivery
    /// when applied; see the [ordering instants](Self#ordering-instants)).
    ///
    /// # Errors
    ///
    /// [`MappingConfigError::InvalidPath`].
    pub fn as_of_path(mut self, path: Option<&str>) -> Result<Self, MappingConfigError> {
        self.as_of_path = path.map(checked).transpose()?;
        Ok(self)
    }

    /// Where, in the envelope (beside `type` and `data`), the time the
    /// event was made lives, in milliseconds since the Unix epoch; it dates
    /// deletions (`None`: not read).
    ///
    /// # Errors
    ///
    /// [`MappingConfigError::InvalidPath`].
    pub fn event_time_path(mut self, path: Option<&str>) -> Result<Self, MappingConfigError> {
        self.event_time_path = path.map(checked).transpose()?;
        Ok(self)
    }

    fn subject(&self, data: &Value) -> Result<ExternalSubject, UserEventError> {
        let id = lookup(data, &self.id_path).and_then(Value::as_str).ok_or(
            UserEventError::Malformed("user id is missing or not a string"),
        )?;
        ExternalSubject::parse(id).map_err(|_| UserEventError::Malformed("user id is invalid"))
    }

    fn profile(&self, data: &Value) -> Result<ExternalProfile<R>, UserEventError> {
        let subject = self.subject(data)?;
        let role_leaf = lookup(data, &self.role_path).map(leaf);
        let role = self.mapping.resolve(role_leaf.as_ref())?;
        let email = optional_string(data, self.email_path.as_deref(), "email is not a string")?;
        let name = optional_string(data, self.name_path.as_deref(), "name is not a string")?;
        let disabled = match self.disabled_path.as_deref().and_then(|p| lookup(data, p)) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(disabled)) => Some(*disabled),
            Some(_) => return Err(UserEventError::Malformed("disabled flag is not a boolean")),
        };
        let as_of = milliseconds(
            self.as_of_path.as_deref().and_then(|p| lookup(data, p)),
            "user's updated time is not an integer of milliseconds",
        )?;
        Ok(ExternalProfile {
            issuer: self.issuer.clone(),
            subject,
            role,
            email,
            name,
            enabled: disabled.map(|disabled| !disabled),
            as_of: as_of.map_or(AsOf::Unknown, AsOf::Provider),
        })
    }
}

impl<R: Role> UserEventDecoder<R> for JsonUserEventDecoder<R> {
    fn decode(&self, payload: &[u8]) -> Result<UserEvent<R>, UserEventError> {
        let envelope: Value = serde_json::from_slice(payload)
            .map_err(|_| UserEventError::Malformed("payload is not JSON"))?;
        let kind = envelope
            .get("type")
            .and_then(Value::as_str)
            .ok_or(UserEventError::Malformed("event type is missing"))?;
        let is = |name: &str| kind == name;
        if !(is(&self.created) || is(&self.updated) || is(&self.deleted)) {
            return Ok(UserEvent::Ignored);
        }
        let data = envelope
            .get("data")
            .filter(|data| data.is_object())
            .ok_or(UserEventError::Malformed("event data is missing"))?;
        if is(&self.deleted) {
            return Ok(UserEvent::Deleted {
                issuer: self.issuer.clone(),
                subject: self.subject(data)?,
                as_of: milliseconds(
                    self.event_time_path
                        .as_deref()
                        .and_then(|p| lookup(&envelope, p)),
                    "event time is not an integer of milliseconds",
                )?,
            });
        }
        self.profile(data).map(UserEvent::Upserted)
    }
}

/// The value at the dotted `path`; numeric segments index arrays.
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |node, segment| match node {
        Value::Object(members) => members.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// An optional instant written as milliseconds since the Unix epoch.
fn milliseconds(
    value: Option<&Value>,
    wrong_type: &'static str,
) -> Result<Option<OffsetDateTime>, UserEventError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => {
            let millis = number
                .as_i64()
                .ok_or(UserEventError::Malformed(wrong_type))?;
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
                .map(Some)
                .map_err(|_| UserEventError::Malformed(wrong_type))
        }
        Some(_) => Err(UserEventError::Malformed(wrong_type)),
    }
}

fn optional_string(
    data: &Value,
    path: Option<&str>,
    wrong_type: &'static str,
) -> Result<Option<String>, UserEventError> {
    match path.and_then(|p| lookup(data, p)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(UserEventError::Malformed(wrong_type)),
    }
}

fn leaf(value: &Value) -> Leaf<'_> {
    match value {
        Value::String(text) => Leaf::Str(text.as_str().into()),
        Value::Null => Leaf::Null,
        Value::Bool(flag) => Leaf::Bool(*flag),
        Value::Number(n) => n
            .as_i64()
            .map(Leaf::Int)
            .or_else(|| n.as_f64().map(Leaf::Float))
            .unwrap_or(Leaf::Other),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(Cow::Borrowed))
            .collect::<Option<Vec<_>>>()
            .map_or(Leaf::Other, Leaf::Strings),
        Value::Object(_) => Leaf::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tessera_application::external::RoleMappingError;
    use tessera_domain::UserRole;

    use super::*;
    use crate::identity::MissingRole;

    const ISSUER: &str = "https://clerk.example.com";

    fn decoder() -> JsonUserEventDecoder<UserRole> {
        let mapping = ClaimMapping::new(
            "public_metadata.role",
            MissingRole::LeastPrivilege(UserRole::User),
        )
        .unwrap()
        .map("admin", UserRole::Admin)
        .unwrap()
        .map("member", UserRole::User)
        .unwrap();
        JsonUserEventDecoder::new(ISSUER, mapping)
    }

    fn decode(payload: &Value) -> Result<UserEvent<UserRole>, UserEventError> {
        decoder().decode(payload.to_string().as_bytes())
    }

    fn clerk_user(role: Value, banned: bool) -> Value {
        json!({
            "id": "user_29w83sxmDNGwOuEthce5gg56FcC",
            "object": "user",
            "username": "alice",
            "email_addresses": [
                {"id": "idn_1", "email_address": "alice@example.org"},
                {"id": "idn_2", "email_address": "alice@work.example"}
            ],
            "public_metadata": {"role": role},
            "banned": banned,
            "updated_at": UPDATED_AT_MS
        })
    }

    /// Clerk's `updated_at`: 2022-05-31T16:16:31.514Z.
    const UPDATED_AT_MS: i64 = 1_654_013_791_514;

    fn millis(ms: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
    }

    #[test]
    fn a_clerk_user_update_becomes_an_upsert_with_the_mapped_role() {
        let event =
            decode(&json!({"type": "user.updated", "data": clerk_user(json!("admin"), false)}))
                .unwrap();
        assert_eq!(
            event,
            UserEvent::Upserted(ExternalProfile {
                issuer: ISSUER.into(),
                subject: ExternalSubject::parse("user_29w83sxmDNGwOuEthce5gg56FcC").unwrap(),
                role: UserRole::Admin,
                email: Some("alice@example.org".into()),
                name: None,
                enabled: Some(true),
                as_of: AsOf::Provider(millis(UPDATED_AT_MS)),
            })
        );
    }

    #[test]
    fn a_banned_user_is_disabled_and_a_missing_role_is_least_privilege() {
        let mut data = clerk_user(json!(null), true);
        data["public_metadata"] = json!({});
        let UserEvent::Upserted(profile) =
            decode(&json!({"type": "user.created", "data": data})).unwrap()
        else {
            panic!("expected an upsert");
        };
        assert_eq!(profile.enabled, Some(false));
        assert_eq!(profile.role, UserRole::User);
    }

    #[test]
    fn a_deleted_user_needs_only_its_id() {
        let event = decode(&json!({
            "type": "user.deleted",
            "data": {"deleted": true, "id": "user_1", "object": "user"}
        }))
        .unwrap();
        assert_eq!(
            event,
            UserEvent::Deleted {
                issuer: ISSUER.into(),
                subject: ExternalSubject::parse("user_1").unwrap(),
                as_of: None,
            }
        );
    }

    #[test]
    fn an_update_is_dated_by_the_users_updated_at_to_the_millisecond() {
        let UserEvent::Upserted(profile) = decode(&json!({
            "type": "user.updated",
            "timestamp": UPDATED_AT_MS + 40,
            "data": clerk_user(json!("member"), false)
        }))
        .unwrap() else {
            panic!("expected an upsert");
        };
        // The state's instant, not the (later) event time.
        let as_of = profile.as_of.provider_instant().unwrap();
        assert_eq!(as_of, millis(UPDATED_AT_MS));
        assert_eq!(as_of.unix_timestamp(), 1_654_013_791);
        assert_eq!(as_of.millisecond(), 514);

        let mut data = clerk_user(json!("member"), false);
        data["updated_at"] = json!(null);
        let UserEvent::Upserted(profile) =
            decode(&json!({"type": "user.updated", "data": data})).unwrap()
        else {
            panic!("expected an upsert");
        };
        assert_eq!(profile.as_of, AsOf::Unknown, "null: unknown");
    }

    #[test]
    fn a_deletion_is_dated_by_the_envelope_event_time_not_by_the_users_data() {
        let event = decode(&json!({
            "type": "user.deleted",
            "object": "event",
            "timestamp": 1_654_012_591_835_i64,
            "data": {"deleted": true, "id": "user_1", "object": "user", "updated_at": 5}
        }))
        .unwrap();
        assert_eq!(
            event,
            UserEvent::Deleted {
                issuer: ISSUER.into(),
                subject: ExternalSubject::parse("user_1").unwrap(),
                as_of: Some(millis(1_654_012_591_835)),
            }
        );
    }

    #[test]
    fn instants_that_are_not_integer_milliseconds_are_malformed() {
        for updated_at in [
            json!("2024-01-01T00:00:00Z"),
            json!(1.654e12),
            json!(true),
            json!(i64::MAX),
            json!(u64::MAX),
        ] {
            let mut data = clerk_user(json!("member"), false);
            data["updated_at"] = updated_at.clone();
            assert!(
                matches!(
                    decode(&json!({"type": "user.updated", "data": data})),
                    Err(UserEventError::Malformed(_))
                ),
                "{updated_at}"
            );
        }
        let deleted =
            json!({"type": "user.deleted", "timestamp": "yesterday", "data": {"id": "u"}});
        assert!(matches!(
            decode(&deleted),
            Err(UserEventError::Malformed(_))
        ));
    }

    #[test]
    fn instant_paths_are_configurable_and_can_be_turned_off() {
        let custom = decoder()
            .as_of_path(Some("meta.changed_ms"))
            .unwrap()
            .event_time_path(Some("meta.sent_ms"))
            .unwrap();
        let mut data = clerk_user(json!("member"), false);
        data["meta"] = json!({"changed_ms": 2_000});
        let payload = json!({"type": "user.updated", "data": data});
        let UserEvent::Upserted(profile) = custom.decode(payload.to_string().as_bytes()).unwrap()
        else {
            panic!("expected an upsert");
        };
        assert_eq!(profile.as_of, AsOf::Provider(millis(2_000)));
        let payload =
            json!({"type": "user.deleted", "meta": {"sent_ms": 3_000}, "data": {"id": "u"}});
        let UserEvent::Deleted { as_of, .. } =
            custom.decode(payload.to_string().as_bytes()).unwrap()
        else {
            panic!("expected a deletion");
        };
        assert_eq!(as_of, Some(millis(3_000)));

        let off = custom
            .as_of_path(None)
            .unwrap()
            .event_time_path(None)
            .unwrap();
        let payload = json!({"type": "user.updated", "data": clerk_user(json!("member"), false)});
        let UserEvent::Upserted(profile) = off.decode(payload.to_string().as_bytes()).unwrap()
        else {
            panic!("expected an upsert");
        };
        assert_eq!(profile.as_of, AsOf::Unknown);
        let payload = json!({"type": "user.deleted", "timestamp": 3_000, "data": {"id": "u"}});
        let UserEvent::Deleted { as_of, .. } = off.decode(payload.to_string().as_bytes()).unwrap()
        else {
            panic!("expected a deletion");
        };
        assert_eq!(as_of, None);
        assert!(matches!(
            decoder().as_of_path(Some("")),
            Err(MappingConfigError::InvalidPath(_))
        ));
    }

    #[test]
    fn unknown_event_types_are_ignored_not_errors() {
        for kind in ["session.created", "organization.updated", "user.updated.v2"] {
            assert_eq!(
                decode(&json!({"type": kind, "data": {}})).unwrap(),
                UserEvent::Ignored
            );
        }
    }

    #[test]
    fn an_unmappable_role_is_an_error() {
        let err =
            decode(&json!({"type": "user.updated", "data": clerk_user(json!("root"), false)}))
                .unwrap_err();
        assert!(matches!(
            err,
            UserEventError::Role(RoleMappingError::Unmapped(_))
        ));
        let err = decode(&json!({"type": "user.updated", "data": clerk_user(json!(7), false)}))
            .unwrap_err();
        assert!(matches!(
            err,
            UserEventError::Role(RoleMappingError::WrongType { .. })
        ));
    }

    #[test]
    fn malformed_payloads_are_errors() {
        for payload in [
            b"not json".to_vec(),
            json!({"data": {}}).to_string().into_bytes(),
            json!({"type": "user.updated"}).to_string().into_bytes(),
            json!({"type": "user.updated", "data": []}).to_string().into_bytes(),
            json!({"type": "user.updated", "data": {"id": 5}}).to_string().into_bytes(),
            json!({"type": "user.deleted", "data": {"id": ""}}).to_string().into_bytes(),
            json!({"type": "user.updated", "data": {"id": "u", "banned": "yes"}})
                .to_string()
                .into_bytes(),
            json!({"type": "user.updated", "data": {"id": "u", "email_addresses": [{"email_address": 1}]}})
                .to_string()
                .into_bytes(),
        ] {
            assert!(
                matches!(decoder().decode(&payload), Err(UserEventError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(&payload)
            );
        }
    }

    #[test]
    fn names_and_paths_are_configurable() {
        let decoder = decoder()
            .event_types("identity.new", "identity.changed", "identity.gone")
            .id_path("user.sub")
            .unwrap()
            .role_path("app_metadata.roles")
            .unwrap()
            .email_path(Some("user.email"))
            .unwrap()
            .name_path(Some("user.name"))
            .unwrap()
            .disabled_path(None)
            .unwrap();
        let payload = json!({"type": "identity.changed", "data": {
            "user": {"sub": "auth0|42", "email": "bob@example.org", "name": "Bob"},
            "app_metadata": {"roles": ["member", "admin"]},
            "banned": true
        }});
        let UserEvent::Upserted(profile) = decoder.decode(payload.to_string().as_bytes()).unwrap()
        else {
            panic!("expected an upsert");
        };
        assert_eq!(profile.subject.as_str(), "auth0|42");
        assert_eq!(profile.role, UserRole::Admin);
        assert_eq!(profile.email.as_deref(), Some("bob@example.org"));
        assert_eq!(profile.name.as_deref(), Some("Bob"));
        assert_eq!(profile.enabled, None);
        assert_eq!(
            decoder
                .decode(
                    json!({"type": "user.updated", "data": {}})
                        .to_string()
                        .as_bytes()
                )
                .unwrap(),
            UserEvent::Ignored
        );
    }
}
