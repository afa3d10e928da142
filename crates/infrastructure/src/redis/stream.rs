//! The stream and the state keys, in Redis commands and scripts: how a
//! change is written, how an instance reads what is new, loads a snapshot,
//! asks the state directly, and how the stream is trimmed.

use std::fmt;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::streams::{StreamRangeReply, StreamReadReply};
use tessera_application::ports::{WatermarkKind, WatermarkScope};
use tessera_domain::{SessionId, TenantId, UserId};

use super::error::RedisStoreError;
use crate::revocation_sync::Change;

/// How many entries one read of the stream returns at most, and how many
/// one trim deletes.
pub(super) const PAGE: usize = 1_000;

/// A position in the change stream: a Redis stream entry id, `ms-seq`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamPosition {
    ms: u64,
    seq: u64,
}

impl StreamPosition {
    /// Parses `ms-seq`; `None` for anything else.
    fn parse(id: &str) -> Option<Self> {
        let (ms, seq) = id.split_once('-')?;
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for StreamPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One entry of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A change to apply.
    Change(Change),
    /// The state was changed by hand: reload it.
    Resync,
}

/// The keys of one store.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

fn kind_code(kind: WatermarkKind) -> &'static str {
    match kind {
        WatermarkKind::ForceLogout => "f",
        WatermarkKind::ClaimsStale => "c",
    }
}

/// `u <user>`, `t <tenant>` or `e -`, separated by `sep`.
fn scope_code(scope: &WatermarkScope, sep: char) -> String {
    match scope {
        WatermarkScope::User(id) => format!("u{sep}{id}"),
        WatermarkScope::Tenant(id) => format!("t{sep}{}", id.as_str()),
        WatermarkScope::Everyone => format!("e{sep}-"),
    }
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    fn log(&self) -> String {
        format!("{}:log", self.prefix)
    }

    fn horizon(&self) -> String {
        format!("{}:horizon", self.prefix)
    }

    fn logout(&self, session_id: &SessionId) -> String {
        format!("{}:logout:{session_id}", self.prefix)
    }

    fn logouts(&self) -> String {
        format!("{}:logouts", self.prefix)
    }

    fn watermark(&self, kind: WatermarkKind, scope: &WatermarkScope) -> String {
        format!(
            "{}:wm:{}:{}",
            self.prefix,
            kind_code(kind),
            scope_code(scope, ':')
        )
    }

    fn watermarks(&self) -> String {
        format!("{}:watermarks", self.prefix)
    }
}

/// How a watermark is spelled in entries and in the sorted set.
fn watermark_member(kind: WatermarkKind, scope: &WatermarkScope) -> String {
    format!("{} {}", kind_code(kind), scope_code(scope, ' '))
}

/// The entry announcing `change`.
pub(crate) fn encode(change: &Change) -> String {
    match change {
        Change::LogOut {
            session_id,
            until,
            at,
        } => format!("logout {session_id} {until} {at}"),
        Change::Raise { scope, kind, at } => {
            format!("raise {} {at}", watermark_member(*kind, scope))
        }
        Change::Clear { scope, kind } => format!("clear {}", watermark_member(*kind, scope)),
    }
}

/// A watermark's kind and scope from its spelling's fields.
fn parse_watermark<'a>(
    fields: &mut impl Iterator<Item = &'a str>,
) -> Option<(WatermarkKind, WatermarkScope)> {
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
    Some((kind, scope))
}

/// An entry's text, parsed; `None` for anything not understood.
pub(crate) fn decode(text: &str) -> Option<Entry> {
    let mut fields = text.split(' ');
    let entry = match fields.next()? {
        "logout" => Entry::Change(Change::LogOut {
            session_id: SessionId::parse(fields.next()?).ok()?,
            until: fields.next()?.parse().ok()?,
            at: fields.next()?.parse().ok()?,
        }),
        "raise" => {
            let (kind, scope) = parse_watermark(&mut fields)?;
            let at = fields.next()?.parse().ok()?;
            Entry::Change(Change::Raise { scope, kind, at })
        }
        "clear" => {
            let (kind, scope) = parse_watermark(&mut fields)?;
            Entry::Change(Change::Clear { scope, kind })
        }
        "resync" => Entry::Resync,
        _ => return None,
    };
    fields.next().is_none().then_some(entry)
}

/// Raises a logout's end (`ARGV[2]`, kept `ARGV[3]` seconds), indexes it
/// by its time, appends the entry; returns the entry's id.
const LOG_OUT: &str = r"
local cur = tonumber(redis.call('GET', KEYS[2]) or '-1')
if tonumber(ARGV[2]) > cur and tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
return redis.call('XADD', KEYS[1], '*', 'c', ARGV[1])
";

/// Raises a watermark to `ARGV[2]` (never lowers it), kept `ARGV[3]`
/// seconds, indexed by its time; appends the entry; returns its id.
const RAISE: &str = r"
local cur = redis.call('GET', KEYS[2])
if (not cur) or tonumber(ARGV[2]) > tonumber(cur) then
  if tonumber(ARGV[3]) > 0 then
    redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  end
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[4])
end
return redis.call('XADD', KEYS[1], '*', 'c', ARGV[1])
";

/// Removes a watermark; appends the entry; returns its id.
const CLEAR: &str = r"
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return redis.call('XADD', KEYS[1], '*', 'c', ARGV[1])
";

/// Deletes up to `ARGV[2]` entries older than `ARGV[1]` (an id) and records
/// the last deleted as the horizon; returns how many.
const TRIM: &str = r"
local old = redis.call('XRANGE', KEYS[1], '-', '(' .. ARGV[1], 'COUNT', ARGV[2])
if #old == 0 then return 0 end
local ids = {}
for i, e in ipairs(old) do ids[i] = e[1] end
redis.call('XDEL', KEYS[1], unpack(ids))
redis.call('SET', KEYS[2], ids[#ids])
return #ids
";

/// Writes `change` to its state keys and to the stream, atomically;
/// returns the entry's position. `now` (Unix seconds, the instance's clock)
/// and `absolute` (the absolute session lifetime plus leeway, seconds)
/// decide how long state keys live.
pub(super) async fn write(
    conn: &mut ConnectionManager,
    keys: &Keys,
    change: &Change,
    now: i64,
    absolute: i64,
) -> Result<StreamPosition, RedisStoreError> {
    let entry = encode(change);
    let id: String = match change {
        Change::LogOut {
            session_id,
            until,
            at,
        } => {
            redis::Script::new(LOG_OUT)
                .key(keys.log())
                .key(keys.logout(session_id))
                .key(keys.logouts())
                .arg(&entry)
                .arg(until)
                .arg(until.saturating_sub(now))
                .arg(format!("{session_id} {until}"))
                .arg(at)
                .invoke_async(conn)
                .await?
        }
        Change::Raise { scope, kind, at } => {
            redis::Script::new(RAISE)
                .key(keys.log())
                .key(keys.watermark(*kind, scope))
                .key(keys.watermarks())
                .arg(&entry)
                .arg(at)
                .arg(at.saturating_add(absolute).saturating_sub(now))
                .arg(watermark_member(*kind, scope))
                .invoke_async(conn)
                .await?
        }
        Change::Clear { scope, kind } => {
            redis::Script::new(CLEAR)
                .key(keys.log())
                .key(keys.watermark(*kind, scope))
                .key(keys.watermarks())
                .arg(&entry)
                .arg(watermark_member(*kind, scope))
                .invoke_async(conn)
                .await?
        }
    };
    StreamPosition::parse(&id).ok_or(RedisStoreError::InvalidEntry("stream id"))
}

/// Stream entries as positions and entries.
fn entries(
    ids: Vec<redis::streams::StreamId>,
) -> Result<Vec<(StreamPosition, Entry)>, RedisStoreError> {
    ids.into_iter()
        .map(|e| {
            let position =
                StreamPosition::parse(&e.id).ok_or(RedisStoreError::InvalidEntry("stream id"))?;
            let text: String = e
                .map
                .get("c")
                .and_then(|v| redis::from_redis_value_ref(v).ok())
                .ok_or(RedisStoreError::InvalidEntry("stream entry without `c`"))?;
            let entry = decode(&text).ok_or(RedisStoreError::InvalidEntry("stream entry"))?;
            Ok((position, entry))
        })
        .collect()
}

/// Waits up to `block` for entries after `after`, returns at most [`PAGE`]
/// (none when nothing came), then the stream's horizon (read after, so that
/// a trim racing the read is seen).
pub(super) async fn read_after(
    conn: &mut ConnectionManager,
    keys: &Keys,
    after: StreamPosition,
    block: Duration,
) -> Result<(Vec<(StreamPosition, Entry)>, StreamPosition), RedisStoreError> {
    let reply: Option<StreamReadReply> = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(PAGE)
        .arg("BLOCK")
        .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1))
        .arg("STREAMS")
        .arg(keys.log())
        .arg(after.to_string())
        .query_async(conn)
        .await?;
    let ids = reply
        .into_iter()
        .flat_map(|r| r.keys)
        .flat_map(|k| k.ids)
        .collect();
    let found = entries(ids)?;
    let horizon = horizon(conn, keys).await?;
    Ok((found, horizon))
}

async fn horizon(
    conn: &mut ConnectionManager,
    keys: &Keys,
) -> Result<StreamPosition, RedisStoreError> {
    let horizon: Option<String> = redis::cmd("GET")
        .arg(keys.horizon())
        .query_async(conn)
        .await?;
    match horizon {
        None => Ok(StreamPosition::default()),
        Some(h) => StreamPosition::parse(&h).ok_or(RedisStoreError::InvalidEntry("horizon")),
    }
}

/// Reads, atomically, the position the state reflects and every change
/// that can still matter: logouts written after `logged_out_after`,
/// watermarks after `watermarks_after` (Unix seconds).
pub(super) async fn snapshot(
    conn: &mut ConnectionManager,
    keys: &Keys,
    logged_out_after: i64,
    watermarks_after: i64,
) -> Result<(StreamPosition, Vec<Change>), RedisStoreError> {
    type Snapshot = (
        StreamRangeReply,
        Option<String>,
        Vec<(String, f64)>,
        Vec<(String, f64)>,
    );
    let (last, horizon, logouts, watermarks): Snapshot = redis::pipe()
        .atomic()
        .cmd("XREVRANGE")
        .arg(keys.log())
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .cmd("GET")
        .arg(keys.horizon())
        .cmd("ZRANGEBYSCORE")
        .arg(keys.logouts())
        .arg(format!("({logged_out_after}"))
        .arg("+inf")
        .arg("WITHSCORES")
        .cmd("ZRANGEBYSCORE")
        .arg(keys.watermarks())
        .arg(format!("({watermarks_after}"))
        .arg("+inf")
        .arg("WITHSCORES")
        .query_async(conn)
        .await?;
    let last = last
        .ids
        .first()
        .and_then(|e| StreamPosition::parse(&e.id))
        .unwrap_or_default();
    let horizon = horizon
        .as_deref()
        .and_then(StreamPosition::parse)
        .unwrap_or_default();
    let mut changes = Vec::with_capacity(logouts.len() + watermarks.len());
    for (member, at) in logouts {
        let mut fields = member.split(' ');
        let change = (|| {
            Some(Change::LogOut {
                session_id: SessionId::parse(fields.next()?).ok()?,
                until: fields.next()?.parse().ok()?,
                at: at as i64,
            })
        })()
        .ok_or(RedisStoreError::InvalidEntry("logouts member"))?;
        changes.push(change);
    }
    for (member, at) in watermarks {
        let (kind, scope) = parse_watermark(&mut member.split(' '))
            .ok_or(RedisStoreError::InvalidEntry("watermarks member"))?;
        changes.push(Change::Raise {
            scope,
            kind,
            at: at as i64,
        });
    }
    Ok((last.max(horizon), changes))
}

/// What the state keys say of one session, its user, tenant and everyone,
/// as changes (the logout's `at` is `now`).
pub(super) async fn about(
    conn: &mut ConnectionManager,
    keys: &Keys,
    session_id: &SessionId,
    user_id: &UserId,
    tenant: Option<&TenantId>,
    now: i64,
) -> Result<Vec<Change>, RedisStoreError> {
    let mut scopes = vec![WatermarkScope::User(*user_id), WatermarkScope::Everyone];
    if let Some(t) = tenant {
        scopes.push(WatermarkScope::Tenant(t.clone()));
    }
    let marks: Vec<(WatermarkKind, WatermarkScope)> =
        [WatermarkKind::ForceLogout, WatermarkKind::ClaimsStale]
            .into_iter()
            .flat_map(|k| scopes.iter().map(move |s| (k, s.clone())))
            .collect();
    let mut cmd = redis::cmd("MGET");
    cmd.arg(keys.logout(session_id));
    for (kind, scope) in &marks {
        cmd.arg(keys.watermark(*kind, scope));
    }
    let values: Vec<Option<i64>> = cmd.query_async(conn).await?;
    let mut values = values.into_iter();
    let mut changes = Vec::new();
    if let Some(Some(until)) = values.next() {
        changes.push(Change::LogOut {
            session_id: *session_id,
            until,
            at: now,
        });
    }
    for ((kind, scope), at) in marks.into_iter().zip(values) {
        if let Some(at) = at {
            changes.push(Change::Raise { scope, kind, at });
        }
    }
    Ok(changes)
}

/// Drops index entries that can no longer matter to a starting instance
/// (logouts written at or before `logouts_until`, watermarks at or before
/// `watermarks_until`), and trims stream entries older than `retention` by
/// the server's clock, [`PAGE`] at a time. Returns how many entries went.
pub(super) async fn purge(
    conn: &mut ConnectionManager,
    keys: &Keys,
    logouts_until: i64,
    watermarks_until: i64,
    retention: Duration,
) -> Result<u64, RedisStoreError> {
    let _: () = redis::pipe()
        .cmd("ZREMRANGEBYSCORE")
        .arg(keys.logouts())
        .arg("-inf")
        .arg(logouts_until)
        .ignore()
        .cmd("ZREMRANGEBYSCORE")
        .arg(keys.watermarks())
        .arg("-inf")
        .arg(watermarks_until)
        .ignore()
        .query_async(conn)
        .await?;
    let (server_s, server_us): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
    let now_ms = server_s.saturating_mul(1000) + server_us / 1000;
    let cut = now_ms.saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(u64::MAX));
    let mut trimmed = 0;
    loop {
        let n: u64 = redis::Script::new(TRIM)
            .key(keys.log())
            .key(keys.horizon())
            .arg(format!("{cut}-0"))
            .arg(PAGE)
            .invoke_async(conn)
            .await?;
        trimmed += n;
        if n < u64::try_from(PAGE).unwrap_or(u64::MAX) {
            return Ok(trimmed);
        }
    }
}

/// Appends a `resync` entry, which makes every instance reload.
pub(super) async fn resync(
    conn: &mut ConnectionManager,
    keys: &Keys,
) -> Result<(), RedisStoreError> {
    let _: String = redis::cmd("XADD")
        .arg(keys.log())
        .arg("*")
        .arg("c")
        .arg("resync")
        .query_async(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_decodes_to_itself() {
        let user = UserId::parse("0190b5a4-7c2e-7d3a-9f00-00000000a11c").unwrap();
        let changes = [
            Change::LogOut {
                session_id: SessionId::parse("0190b5a4-7c2e-7d3a-9f00-0000000005e5").unwrap(),
                until: 1_800_000_000,
                at: 1_799_999_000,
            },
            Change::Raise {
                scope: WatermarkScope::User(user),
                kind: WatermarkKind::ForceLogout,
                at: -5,
            },
            Change::Raise {
                scope: WatermarkScope::Tenant(TenantId::parse("acme-eu.1").unwrap()),
                kind: WatermarkKind::ClaimsStale,
                at: 7,
            },
            Change::Clear {
                scope: WatermarkScope::Everyone,
                kind: WatermarkKind::ForceLogout,
            },
        ];
        for c in changes {
            assert_eq!(decode(&encode(&c)), Some(Entry::Change(c)));
        }
        assert_eq!(decode("resync"), Some(Entry::Resync));
        for bad in ["", "logout", "raise x u - 5", "clear f e - extra", "ping"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn positions_order_by_time_then_sequence() {
        let p = |s| StreamPosition::parse(s).unwrap();
        assert!(p("1-5") < p("2-0"));
        assert!(p("2-0") < p("2-1"));
        assert_eq!(p("17-3").to_string(), "17-3");
        assert_eq!(StreamPosition::parse("x"), None);
    }
}
