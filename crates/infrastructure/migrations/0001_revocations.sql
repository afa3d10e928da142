-- tessera: logouts and watermarks shared by every instance.
--
-- Run by tessera_infrastructure::postgres::migrate, in one transaction under
-- an advisory lock, into the first schema of the connection's search_path.
-- Every write goes through PostgresRevocationStore, which notifies the
-- instances in the same statement; a write made by hand must be followed by
-- `SELECT pg_notify('tessera_revocations', 'resync')` (or the configured
-- channel) for the instances to reload.

-- One session logged out until `until` (when its last token expires anyway).
CREATE TABLE tessera_session_logouts (
    session_id uuid PRIMARY KEY,
    until timestamptz NOT NULL
);
CREATE INDEX tessera_session_logouts_until ON tessera_session_logouts (until);

-- A watermark: tokens of the scope issued at or before `at` (whole seconds)
-- are logged out (force_logout) or must rotate (claims_stale). A cleared
-- watermark stays as a row with `at` NULL until the next purge, so that a
-- clear and a concurrent set of the same watermark lock the same row and
-- reach every instance in the order they committed.
CREATE TABLE tessera_watermarks (
    kind text NOT NULL CHECK (kind IN ('force_logout', 'claims_stale')),
    scope text NOT NULL CHECK (scope IN ('user', 'tenant', 'everyone')),
    -- The user id (hyphenated UUID), the tenant id, or '' for everyone.
    subject text NOT NULL,
    at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, scope, subject),
    CHECK (
        (scope = 'everyone' AND subject = '')
        OR (scope = 'user' AND subject ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
            AND subject <> '00000000-0000-0000-0000-000000000000')
        OR (scope = 'tenant' AND subject ~ '^[A-Za-z0-9._-]{1,64}$')
    ),
    CHECK (at IS NULL OR at = date_trunc('second', at))
);
CREATE INDEX tessera_watermarks_at ON tessera_watermarks (at);
