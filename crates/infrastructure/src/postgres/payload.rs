//! How revocation changes are spelled in the tables and in notifications.
//!
//! A notification payload is one line of space-separated fields:
//!
//! ```text
//! v1 <origin> <op> logout <session-id> <until, Unix seconds>
//! v1 <origin> <op> raise <f|c> <u|t|e> <subject|-> <at, Unix seconds>
//! v1 <origin> <op> clear <f|c> <u|t|e> <subject|->
//! v1 <origin> <op> ping
//! ```
//!
//! `origin` is the writing instance and `op` its write counter, so a writer
//! can tell when its own change has reached its cache. Any other payload
//! (`resync`, say, sent by hand after editing the tables) makes every
//! instance reload its whole cache.

use std::fmt::Write as _;

use tessera_application::ports::{WatermarkKind, WatermarkScope};
use tessera_domain::{SessionId, TenantId, UserId};
use uuid::Uuid;

/// One change to the revocation state, as applied to a cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A session is logged out until `until` (Unix seconds).
    LogOut { session_id: SessionId, until: i64 },
    /// A watermark is raised to `at` (Unix seconds).
    Raise {
        scope: WatermarkScope,
        kind: WatermarkKind,
        at: i64,
    },
    /// A watermark is cleared.
    Clear {
        scope: WatermarkScope,
        kind: WatermarkKind,
    },
}

/// What a notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// A change written by instance `origin` as its write number `op`.
    Change {
        origin: Uuid,
        op: u64,
        change: Change,
    },
    /// A heartbeat: the channel is alive.
    Ping,
    /// Anything else: reload everything.
    Resync,
}

/// The `kind` column's value.
pub(crate) fn kind_name(kind: WatermarkKind) -> &'static str {
    match kind {
        WatermarkKind::ForceLogout => "force_logout",
        WatermarkKind::ClaimsStale => "claims_stale",
    }
}

/// A `kind` column's value, parsed.
pub(crate) fn parse_kind(name: &str) -> Option<WatermarkKind> {
    match name {
        "force_logout" => Some(WatermarkKind::ForceLogout),
        "claims_stale" => Some(WatermarkKind::ClaimsStale),
        _ => None,
    }
}

/// The `scope` and `subject` columns' values.
pub(crate) fn scope_columns(scope: &WatermarkScope) -> (&'static str, String) {
    match scope {
        WatermarkScope::User(id) => ("user", id.to_string()),
        WatermarkScope::Tenant(id) => ("tenant", id.as_str().to_owned()),
        WatermarkScope::Everyone => ("everyone", String::new()),
    }
}

/// `scope` and `subject` columns' values, parsed.
pub(crate) fn parse_scope(scope: &str, subject: &str) -> Option<WatermarkScope> {
    match scope {
        "user" => UserId::parse(subject).ok().map(WatermarkScope::User),
        "tenant" => TenantId::parse(subject).ok().map(WatermarkScope::Tenant),
        "everyone" if subject.is_empty() => Some(WatermarkScope::Everyone),
        _ => None,
    }
}

fn kind_code(kind: WatermarkKind) -> char {
    match kind {
        WatermarkKind::ForceLogout => 'f',
        WatermarkKind::ClaimsStale => 'c',
    }
}

fn push_scope(out: &mut String, scope: &WatermarkScope) {
    // Writing to a String cannot fail.
    let _ = match scope {
        WatermarkScope::User(id) => write!(out, " u {id}"),
        WatermarkScope::Tenant(id) => write!(out, " t {}", id.as_str()),
        WatermarkScope::Everyone => write!(out, " e -"),
    };
}

/// The payload announcing `change`.
pub(crate) fn encode(origin: Uuid, op: u64, change: &Change) -> String {
    let mut out = format!("v1 {origin} {op}");
    // Writing to a String cannot fail.
    let _ = match change {
        Change::LogOut { session_id, until } => write!(out, " logout {session_id} {until}"),
        Change::Raise { scope, kind, at } => {
            let _ = write!(out, " raise {}", kind_code(*kind));
            push_scope(&mut out, scope);
            write!(out, " {at}")
        }
        Change::Clear { scope, kind } => {
            let _ = write!(out, " clear {}", kind_code(*kind));
            push_scope(&mut out, scope);
            Ok(())
        }
    };
    out
}

/// A heartbeat payload.
pub(crate) fn encode_ping(origin: Uuid) -> String {
    format!("v1 {origin} 0 ping")
}

/// Reads a payload; anything not understood asks for a reload.
pub(crate) fn decode(payload: &str) -> Message {
    decode_known(payload).unwrap_or(Message::Resync)
}

fn decode_known(payload: &str) -> Option<Message> {
    let mut fields = payload.split(' ');
    if fields.next()? != "v1" {
        return None;
    }
    let origin = Uuid::try_parse(fields.next()?).ok()?;
    let op = fields.next()?.parse::<u64>().ok()?;
    let verb = fields.next()?;
    let message = match verb {
        "ping" => Message::Ping,
        "logout" => {
            let session_id = SessionId::parse(fields.next()?).ok()?;
            let until = fields.next()?.parse().ok()?;
            change(origin, op, Change::LogOut { session_id, until })
        }
        "raise" | "clear" => {
            let kind = match fields.next()? {
                "f" => WatermarkKind::ForceLogout,
                "c" => WatermarkKind::ClaimsStale,
                _ => return None,
            };
            let scope = match (fields.next()?, fields.next()?) {
                ("u", id) => WatermarkScope::User(UserId::parse(id).ok()?),
                ("t", id) => WatermarkScope::Tenant(TenantId::parse(id).ok()?),
                ("e", "-") => WatermarkScope::Everyone,
                _ => return None,
            };
            if verb == "raise" {
                let at = fields.next()?.parse().ok()?;
                change(origin, op, Change::Raise { scope, kind, at })
            } else {
                change(origin, op, Change::Clear { scope, kind })
            }
        }
        _ => return None,
    };
    fields.next().is_none().then_some(message)
}

fn change(origin: Uuid, op: u64, change: Change) -> Message {
    Message::Change { origin, op, change }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn origin() -> Uuid {
        Uuid::from_u128(0x0190_b5a4_7c2e_7d3a_9f00_0000_0000_00aa)
    }

    fn user() -> UserId {
        UserId::parse("0190b5a4-7c2e-7d3a-9f00-00000000a11c").unwrap()
    }

    fn changes() -> Vec<Change> {
        let scopes = [
            WatermarkScope::User(user()),
            WatermarkScope::Tenant(TenantId::parse("acme-eu.1").unwrap()),
            WatermarkScope::Everyone,
        ];
        let mut out = vec![Change::LogOut {
            session_id: SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000005e5").unwrap(),
            until: 1_800_000_000,
        }];
        for scope in scopes {
            for kind in [WatermarkKind::ForceLogout, WatermarkKind::ClaimsStale] {
                out.push(Change::Raise {
                    scope: scope.clone(),
                    kind,
                    at: -5,
                });
                out.push(Change::Clear {
                    scope: scope.clone(),
                    kind,
                });
            }
        }
        out
    }

    #[test]
    fn every_change_decodes_to_itself_with_its_origin_and_op() {
        for (op, c) in changes().into_iter().enumerate() {
            let op = op as u64;
            assert_eq!(
                decode(&encode(origin(), op, &c)),
                Message::Change {
                    origin: origin(),
                    op,
                    change: c
                }
            );
        }
    }

    #[test]
    fn a_ping_decodes_as_a_ping() {
        assert_eq!(decode(&encode_ping(origin())), Message::Ping);
    }

    #[test]
    fn a_payload_not_understood_asks_for_a_reload() {
        for p in [
            "",
            "resync",
            "v2 0190b5a4-7c2e-7d3a-9f00-0000000000aa 1 ping",
            "v1 not-a-uuid 1 ping",
            "v1 0190b5a4-7c2e-7d3a-9f00-0000000000aa 1 raise f u 00000000-0000-0000-0000-000000000000 5",
            "v1 0190b5a4-7c2e-7d3a-9f00-0000000000aa 1 raise f e - 5 extra",
            "v1 0190b5a4-7c2e-7d3a-9f00-0000000000aa 1 clear x e -",
            "v1 0190b5a4-7c2e-7d3a-9f00-0000000000aa 1 logout 0190b5a4-7c2e-7d3a-9f00-0000000005e5",
        ] {
            assert_eq!(decode(p), Message::Resync, "{p:?}");
        }
    }

    #[test]
    fn table_names_of_scopes_and_kinds_parse_back() {
        for kind in [WatermarkKind::ForceLogout, WatermarkKind::ClaimsStale] {
            assert_eq!(parse_kind(kind_name(kind)), Some(kind));
        }
        for scope in [
            WatermarkScope::User(user()),
            WatermarkScope::Tenant(TenantId::parse("acme").unwrap()),
            WatermarkScope::Everyone,
        ] {
            let (name, subject) = scope_columns(&scope);
            assert_eq!(parse_scope(name, &subject), Some(scope));
        }
        assert_eq!(parse_scope("everyone", "x"), None);
        assert_eq!(parse_scope("group", ""), None);
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(p in ".{0,200}") {
            let _ = decode(&p);
        }
    }
}
