//! The change log and the state tables, in SQL: how a change is written,
//! how an instance reads what is new, loads a snapshot, asks the tables
//! directly, and how the log is compacted.
//!
//! Every write changes a state table (`tessera_session_logouts`,
//! `tessera_watermarks`) and appends one row to `tessera_revocation_log` in
//! the same statement, then notifies the channel with an empty payload.
//! Sequence numbers are handed out in commit order (see migration 0005),
//! so "the rows after my last sequence" is exactly what an instance has not
//! applied yet.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tessera_application::ports::{WatermarkKind, WatermarkScope};
use tessera_domain::{SessionId, TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::PostgresStoreError;
pub(crate) use crate::revocation_sync::Change;

/// How many rows one read of the log or of a table fetches at most.
pub(super) const PAGE: i64 = 10_000;

/// How the store's statements reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Statements {
    /// Prepared once per connection and reused: a direct connection.
    Prepared,
    /// Through a pooler in transaction mode (PgBouncer): each operation in
    /// a transaction of its own, every statement unnamed. The pooler hands
    /// each transaction to whichever server connection is free, where a
    /// statement prepared on another does not exist (or one of the same
    /// name does).
    PerTransaction,
}

impl Statements {
    /// Whether statements are prepared for reuse.
    fn persistent(self) -> bool {
        self == Self::Prepared
    }
}

/// A connection for one operation: a transaction of its own behind a
/// pooler in transaction mode.
enum Session {
    Direct(PoolConnection<Postgres>),
    Pooled(Transaction<'static, Postgres>),
}

impl Session {
    async fn open(pool: &PgPool, statements: Statements) -> Result<Self, sqlx::Error> {
        Ok(match statements {
            Statements::Prepared => Self::Direct(pool.acquire().await?),
            Statements::PerTransaction => Self::Pooled(pool.begin().await?),
        })
    }

    fn conn(&mut self) -> &mut PgConnection {
        match self {
            Self::Direct(conn) => conn,
            Self::Pooled(tx) => tx,
        }
    }

    /// Ends the operation (commits its transaction, if any).
    async fn close(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Direct(_) => Ok(()),
            Self::Pooled(tx) => tx.commit().await,
        }
    }
}

/// One row of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry {
    /// A change to apply.
    Change(Change),
    /// The tables were changed by hand: reload them.
    Resync,
}

/// What one read of the log found.
#[derive(Debug)]
pub(super) struct LogPage {
    /// Rows with `seq` at or below this may have been compacted away.
    pub(super) compacted_through: i64,
    /// The rows after the asked sequence, in order, at most [`PAGE`].
    pub(super) entries: Vec<(i64, Entry)>,
}

/// A Unix second as a timestamp.
pub(super) fn from_seconds(seconds: i64) -> Result<OffsetDateTime, PostgresStoreError> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| PostgresStoreError::InvalidRow("timestamp out of range"))
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

/// Writes `change` to its state table and to the log, and notifies
/// `channel`; returns the change's sequence number.
pub(super) async fn write(
    pool: &PgPool,
    statements: Statements,
    channel: &str,
    change: &Change,
) -> Result<i64, PostgresStoreError> {
    // `(SELECT count(*) FROM s)` makes the log insert wait for the state
    // change: each writer locks its state row first and the log's order lock
    // last, so writers never wait on each other in a cycle.
    let query = match change {
        Change::LogOut {
            session_id,
            until,
            at,
        } => sqlx::query_scalar(
            "WITH s AS (
                INSERT INTO tessera_session_logouts (session_id, until, logged_out_at)
                VALUES ($2, $3, $4)
                ON CONFLICT (session_id) DO UPDATE
                SET until = GREATEST(tessera_session_logouts.until, EXCLUDED.until),
                    logged_out_at = GREATEST(tessera_session_logouts.logged_out_at,
                                             EXCLUDED.logged_out_at)
                RETURNING 1
            ), l AS (
                INSERT INTO tessera_revocation_log (change, session_id, until, at)
                SELECT 'logout', $2, $3, $4 FROM (SELECT count(*) FROM s) AS done
                RETURNING seq
            ) SELECT seq FROM l, (SELECT pg_notify($1, '')) AS n",
        )
        .bind(channel)
        .bind(*session_id.as_uuid())
        .bind(from_seconds(*until)?)
        .bind(from_seconds(*at)?),
        Change::Raise { scope, kind, at } => {
            let (scope, subject) = scope_columns(scope);
            sqlx::query_scalar(
                "WITH s AS (
                    INSERT INTO tessera_watermarks (kind, scope, subject, at)
                    VALUES ($2, $3, $4, $5)
                    ON CONFLICT (kind, scope, subject) DO UPDATE
                    SET at = GREATEST(tessera_watermarks.at, EXCLUDED.at), updated_at = now()
                    RETURNING 1
                ), l AS (
                    INSERT INTO tessera_revocation_log (change, kind, scope, subject, at)
                    SELECT 'raise', $2, $3, $4, $5 FROM (SELECT count(*) FROM s) AS done
                    RETURNING seq
                ) SELECT seq FROM l, (SELECT pg_notify($1, '')) AS n",
            )
            .bind(channel)
            .bind(kind_name(*kind))
            .bind(scope)
            .bind(subject)
            .bind(from_seconds(*at)?)
        }
        Change::Clear { scope, kind } => {
            let (scope, subject) = scope_columns(scope);
            sqlx::query_scalar(
                "WITH s AS (
                    DELETE FROM tessera_watermarks
                    WHERE kind = $2 AND scope = $3 AND subject = $4
                    RETURNING 1
                ), l AS (
                    INSERT INTO tessera_revocation_log (change, kind, scope, subject)
                    SELECT 'clear', $2, $3, $4 FROM (SELECT count(*) FROM s) AS done
                    RETURNING seq
                ) SELECT seq FROM l, (SELECT pg_notify($1, '')) AS n",
            )
            .bind(channel)
            .bind(kind_name(*kind))
            .bind(scope)
            .bind(subject)
        }
    };
    let mut session = Session::open(pool, statements).await?;
    let seq = query
        .persistent(statements.persistent())
        .fetch_one(session.conn())
        .await?;
    session.close().await?;
    Ok(seq)
}

/// A log row: seq, change, session_id, until, kind, scope, subject, at.
type LogRow = (
    Option<i64>,
    Option<String>,
    Option<Uuid>,
    Option<OffsetDateTime>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<OffsetDateTime>,
);

/// The log's rows after `after`, at most [`PAGE`], and how far it was
/// compacted, read in one statement (one snapshot). (`LIMIT 1` on the
/// one-row horizon keeps the planner's estimate, and so its cost, small:
/// without statistics it would guess thousands of rows and pay for JIT
/// compilation on every read.)
pub(super) async fn read_after(
    pool: &PgPool,
    statements: Statements,
    after: i64,
) -> Result<LogPage, PostgresStoreError> {
    let mut session = Session::open(pool, statements).await?;
    let rows: Vec<(i64, LogRow)> = sqlx::query_as::<
        _,
        (
            i64,
            Option<i64>,
            Option<String>,
            Option<Uuid>,
            Option<OffsetDateTime>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<OffsetDateTime>,
        ),
    >(
        "SELECT h.compacted_through, l.seq, l.change, l.session_id, l.until,
                l.kind, l.scope, l.subject, l.at
         FROM (SELECT compacted_through FROM tessera_revocation_log_horizon LIMIT 1) h
         LEFT JOIN LATERAL (
             SELECT * FROM tessera_revocation_log WHERE seq > $1 ORDER BY seq LIMIT $2
         ) l ON true
         ORDER BY l.seq",
    )
    .bind(after)
    .bind(PAGE)
    .persistent(statements.persistent())
    .fetch_all(session.conn())
    .await?
    .into_iter()
    .map(
        |(h, seq, change, session, until, kind, scope, subject, at)| {
            (h, (seq, change, session, until, kind, scope, subject, at))
        },
    )
    .collect();
    session.close().await?;
    let compacted_through = rows
        .first()
        .map(|(h, _)| *h)
        .ok_or(PostgresStoreError::InvalidRow(
            "tessera_revocation_log_horizon is empty",
        ))?;
    let mut entries = Vec::with_capacity(rows.len());
    for (_, row) in rows {
        if let (Some(seq), Some(entry)) = (row.0, parse_row(row)?) {
            entries.push((seq, entry));
        }
    }
    Ok(LogPage {
        compacted_through,
        entries,
    })
}

/// A log row as an entry; `None` for the empty row of an empty read.
fn parse_row(row: LogRow) -> Result<Option<Entry>, PostgresStoreError> {
    let (seq, change, session_id, until, kind, scope, subject, at) = row;
    let (Some(_), Some(change)) = (seq, change) else {
        return Ok(None);
    };
    let bad = PostgresStoreError::InvalidRow;
    let watermark = || -> Result<(WatermarkKind, WatermarkScope), PostgresStoreError> {
        let kind = kind
            .as_deref()
            .and_then(parse_kind)
            .ok_or(bad("tessera_revocation_log.kind"))?;
        let scope = match (scope.as_deref(), subject.as_deref()) {
            (Some(scope), Some(subject)) => parse_scope(scope, subject),
            _ => None,
        }
        .ok_or(bad("tessera_revocation_log.scope/subject"))?;
        Ok((kind, scope))
    };
    let entry = match change.as_str() {
        "logout" => {
            let session_id = session_id
                .and_then(|id| SessionId::from_uuid(id).ok())
                .ok_or(bad("tessera_revocation_log.session_id"))?;
            let (Some(until), Some(at)) = (until, at) else {
                return Err(bad("tessera_revocation_log.until/at"));
            };
            Entry::Change(Change::LogOut {
                session_id,
                until: crate::memory::ceil_seconds(until),
                at: at.unix_timestamp(),
            })
        }
        "raise" => {
            let (kind, scope) = watermark()?;
            let at = at.ok_or(bad("tessera_revocation_log.at"))?;
            Entry::Change(Change::Raise {
                scope,
                kind,
                at: at.unix_timestamp(),
            })
        }
        "clear" => {
            let (kind, scope) = watermark()?;
            Entry::Change(Change::Clear { scope, kind })
        }
        "resync" => Entry::Resync,
        _ => return Err(bad("tessera_revocation_log.change")),
    };
    Ok(Some(entry))
}

/// What can still matter, as of a snapshot: logouts written after
/// `logged_out_after` and not ended at `now`, watermarks after
/// `watermarks_after`.
#[derive(Debug, Clone, Copy)]
pub(super) struct SnapshotFilter {
    pub(super) now: OffsetDateTime,
    pub(super) logged_out_after: OffsetDateTime,
    pub(super) watermarks_after: OffsetDateTime,
}

/// Reads, in one snapshot, the last sequence the state tables reflect and
/// every change that can still matter (as [`Change::LogOut`] and
/// [`Change::Raise`]), page by page through cursors so that memory stays
/// flat however large the tables. Returns the sequence.
pub(super) async fn snapshot(
    pool: &PgPool,
    statements: Statements,
    filter: SnapshotFilter,
    mut each: impl FnMut(Change),
) -> Result<i64, PostgresStoreError> {
    let persistent = statements.persistent();
    let mut tx = pool.begin().await?;
    // Every row will be fetched: plan the cursors for the whole read, not
    // for the first rows.
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .persistent(persistent)
        .execute(&mut *tx)
        .await?;
    sqlx::query("SET LOCAL cursor_tuple_fraction = 1.0")
        .persistent(persistent)
        .execute(&mut *tx)
        .await?;
    let through: i64 = sqlx::query_scalar(
        "SELECT GREATEST(h.compacted_through, (SELECT max(seq) FROM tessera_revocation_log))
         FROM tessera_revocation_log_horizon h",
    )
    .persistent(persistent)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "DECLARE tessera_logouts NO SCROLL CURSOR FOR
         SELECT session_id, until, logged_out_at FROM tessera_session_logouts
         WHERE logged_out_at > $1 AND until > $2",
    )
    .bind(filter.logged_out_after)
    .bind(filter.now)
    .persistent(persistent)
    .execute(&mut *tx)
    .await?;
    loop {
        let rows: Vec<(Uuid, OffsetDateTime, OffsetDateTime)> =
            sqlx::query_as(&format!("FETCH {PAGE} FROM tessera_logouts"))
                .persistent(persistent)
                .fetch_all(&mut *tx)
                .await?;
        let last = rows.len() < usize::try_from(PAGE).unwrap_or(usize::MAX);
        for (session_id, until, at) in rows {
            let session_id = SessionId::from_uuid(session_id).map_err(|_| {
                PostgresStoreError::InvalidRow("tessera_session_logouts.session_id")
            })?;
            each(Change::LogOut {
                session_id,
                until: crate::memory::ceil_seconds(until),
                at: at.unix_timestamp(),
            });
        }
        if last {
            break;
        }
    }
    sqlx::query(
        "DECLARE tessera_marks NO SCROLL CURSOR FOR
         SELECT kind, scope, subject, at FROM tessera_watermarks WHERE at > $1",
    )
    .bind(filter.watermarks_after)
    .persistent(persistent)
    .execute(&mut *tx)
    .await?;
    loop {
        let rows: Vec<(String, String, String, OffsetDateTime)> =
            sqlx::query_as(&format!("FETCH {PAGE} FROM tessera_marks"))
                .persistent(persistent)
                .fetch_all(&mut *tx)
                .await?;
        let last = rows.len() < usize::try_from(PAGE).unwrap_or(usize::MAX);
        for (kind, scope, subject, at) in rows {
            let kind = parse_kind(&kind)
                .ok_or(PostgresStoreError::InvalidRow("tessera_watermarks.kind"))?;
            let scope = parse_scope(&scope, &subject).ok_or(PostgresStoreError::InvalidRow(
                "tessera_watermarks.scope/subject",
            ))?;
            each(Change::Raise {
                scope,
                kind,
                at: at.unix_timestamp(),
            });
        }
        if last {
            break;
        }
    }
    tx.commit().await?;
    Ok(through)
}

/// A row of [`about`]: a logout's end, or a watermark's kind, scope,
/// subject and time.
type AboutRow = (
    Option<OffsetDateTime>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<OffsetDateTime>,
);

/// Everything the tables hold about one session, its user, its tenant and
/// everyone (as [`Change::LogOut`] and [`Change::Raise`]), read in one
/// statement: what rotation asks.
pub(super) async fn about(
    pool: &PgPool,
    statements: Statements,
    now: OffsetDateTime,
    session_id: &SessionId,
    user_id: &UserId,
    tenant: Option<&TenantId>,
) -> Result<Vec<Change>, PostgresStoreError> {
    let mut session = Session::open(pool, statements).await?;
    let rows: Vec<AboutRow> = sqlx::query_as(
        "SELECT until, NULL, NULL, NULL, NULL FROM tessera_session_logouts
             WHERE session_id = $1 AND until > $4
             UNION ALL
             SELECT NULL, kind, scope, subject, at FROM tessera_watermarks
             WHERE at IS NOT NULL AND ((scope = 'user' AND subject = $2)
                OR (scope = 'tenant' AND subject = $3) OR scope = 'everyone')",
    )
    .bind(*session_id.as_uuid())
    .bind(user_id.to_string())
    .bind(tenant.map(TenantId::as_str))
    .bind(now)
    .persistent(statements.persistent())
    .fetch_all(session.conn())
    .await?;
    session.close().await?;
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        let change = match row {
            (Some(until), ..) => Change::LogOut {
                session_id: *session_id,
                until: crate::memory::ceil_seconds(until),
                at: now.unix_timestamp(),
            },
            (None, Some(kind), Some(scope), Some(subject), Some(at)) => Change::Raise {
                kind: parse_kind(&kind)
                    .ok_or(PostgresStoreError::InvalidRow("tessera_watermarks.kind"))?,
                scope: parse_scope(&scope, &subject).ok_or(PostgresStoreError::InvalidRow(
                    "tessera_watermarks.scope/subject",
                ))?,
                at: at.unix_timestamp(),
            },
            _ => return Err(PostgresStoreError::InvalidRow("tessera_watermarks")),
        };
        changes.push(change);
    }
    Ok(changes)
}

/// Deletes, in batches of at most [`PAGE`] rows, log rows recorded more
/// than `retention` ago (by the database's clock), moving the horizon past
/// them; returns how many were deleted.
pub(super) async fn compact(
    pool: &PgPool,
    statements: Statements,
    retention: Duration,
) -> Result<u64, PostgresStoreError> {
    let mut deleted = 0;
    loop {
        let batch = compact_batch(pool, statements, retention).await?;
        deleted += batch;
        if batch < u64::try_from(PAGE).unwrap_or(u64::MAX) {
            return Ok(deleted);
        }
    }
}

/// One batch of [`compact`]: the oldest rows up to the last of at most
/// [`PAGE`] that are past retention.
async fn compact_batch(
    pool: &PgPool,
    statements: Statements,
    retention: Duration,
) -> Result<u64, PostgresStoreError> {
    let mut session = Session::open(pool, statements).await?;
    let deleted: i64 = sqlx::query_scalar(
        "WITH cut AS (
            SELECT max(seq) AS through FROM (
                SELECT seq FROM tessera_revocation_log
                WHERE recorded_at < now() - make_interval(secs => $1)
                ORDER BY seq LIMIT $2
            ) AS old
        ), gone AS (
            DELETE FROM tessera_revocation_log WHERE seq <= (SELECT through FROM cut)
            RETURNING seq
        ), moved AS (
            UPDATE tessera_revocation_log_horizon
            SET compacted_through = GREATEST(compacted_through, (SELECT through FROM cut))
            WHERE (SELECT through FROM cut) IS NOT NULL
            RETURNING 1
        ) SELECT (SELECT count(*) FROM gone) + 0 * (SELECT count(*) FROM moved)",
    )
    .bind(retention.as_secs_f64())
    .bind(PAGE)
    .persistent(statements.persistent())
    .fetch_one(session.conn())
    .await?;
    session.close().await?;
    Ok(u64::try_from(deleted).unwrap_or(0))
}

/// Deletes state rows that can no longer matter: logouts ended at `now`,
/// watermarks at or before `horizon`. Returns how many of each.
pub(super) async fn purge(
    pool: &PgPool,
    statements: Statements,
    now: OffsetDateTime,
    horizon: OffsetDateTime,
) -> Result<(u64, u64), PostgresStoreError> {
    let mut session = Session::open(pool, statements).await?;
    let sessions = sqlx::query("DELETE FROM tessera_session_logouts WHERE until <= $1")
        .bind(now)
        .persistent(statements.persistent())
        .execute(session.conn())
        .await?
        .rows_affected();
    let watermarks = sqlx::query("DELETE FROM tessera_watermarks WHERE at IS NULL OR at <= $1")
        .bind(horizon)
        .persistent(statements.persistent())
        .execute(session.conn())
        .await?
        .rows_affected();
    session.close().await?;
    Ok((sessions, watermarks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserId {
        UserId::parse("0190b5a4-7c2e-7d3a-9f00-00000000a11c").unwrap()
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

    #[test]
    fn an_unknown_change_is_an_invalid_row_and_an_empty_read_is_nothing() {
        let row = |change: &str| {
            (
                Some(1),
                Some(change.to_owned()),
                None,
                None,
                None,
                None,
                None,
                None,
            )
        };
        assert!(matches!(
            parse_row(row("drop")),
            Err(PostgresStoreError::InvalidRow(_))
        ));
        assert!(matches!(
            parse_row(row("logout")),
            Err(PostgresStoreError::InvalidRow(_))
        ));
        assert_eq!(parse_row(row("resync")).unwrap(), Some(Entry::Resync));
        assert_eq!(
            parse_row((None, None, None, None, None, None, None, None)).unwrap(),
            None
        );
    }
}
