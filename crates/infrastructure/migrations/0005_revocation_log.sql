-- tessera: an append-only log of revocation changes, which instances read
-- through their own pool (so table grants, not the notification channel,
-- decide who can change what an instance believes).
--
-- Every write of PostgresRevocationStore changes the state tables and appends
-- one row here in the same statement, then notifies the channel with an empty
-- payload: the notification only says "something is new". Each instance reads
-- the rows after the last sequence it applied.
--
-- Sequence numbers are assigned in commit order: the trigger below takes the
-- row lock of `tessera_revocation_log_horizon` before drawing the next value,
-- and holds it until the transaction ends. PostgreSQL makes a transaction
-- visible before it releases its locks, so by the time a writer can draw
-- sequence n+1, the transaction holding n is visible (or rolled back, leaving
-- a harmless gap). A reader that has seen n+1 has therefore seen everything up
-- to n, and "read after my last sequence" never skips a change committed late.
-- (A plain bigserial hands out numbers at insert time and can commit out of
-- order.) Revocation writes are administrative and rare; serialising them is
-- cheap, and it needs no safety window and no knowledge of xmin.
--
-- A change made by hand in the state tables reaches the instances when a row
-- with change = 'resync' is appended (which needs INSERT on the log and UPDATE
-- on the horizon, like any write):
--   INSERT INTO tessera_revocation_log (change) VALUES ('resync');

CREATE TABLE tessera_revocation_log (
    seq bigint PRIMARY KEY,
    -- The database's time of the write, for compaction.
    recorded_at timestamptz NOT NULL DEFAULT now(),
    change text NOT NULL CHECK (change IN ('logout', 'raise', 'clear', 'resync')),
    -- logout: the session and the end of its logout.
    session_id uuid,
    until timestamptz,
    -- raise and clear: the watermark.
    kind text CHECK (kind IN ('force_logout', 'claims_stale')),
    scope text CHECK (scope IN ('user', 'tenant', 'everyone')),
    subject text,
    -- logout: when it was logged out; raise: the watermark.
    at timestamptz,
    CHECK (change <> 'logout' OR (session_id IS NOT NULL AND until IS NOT NULL AND at IS NOT NULL)),
    CHECK (change NOT IN ('raise', 'clear') OR (kind IS NOT NULL AND scope IS NOT NULL AND subject IS NOT NULL)),
    CHECK (change <> 'raise' OR at IS NOT NULL)
);
CREATE INDEX tessera_revocation_log_recorded_at ON tessera_revocation_log (recorded_at);

CREATE SEQUENCE tessera_revocation_log_seq AS bigint;

-- One row: the lock that orders writers, and how far the log was compacted
-- (rows with seq <= compacted_through may be gone; an instance whose last
-- applied sequence is older reloads from the state tables).
CREATE TABLE tessera_revocation_log_horizon (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    compacted_through bigint NOT NULL DEFAULT 0
);
INSERT INTO tessera_revocation_log_horizon DEFAULT VALUES;

-- `SET search_path FROM CURRENT`: the function finds its tables where the
-- migration put them, whatever the inserting session's search_path.
CREATE FUNCTION tessera_revocation_log_order() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- Held until commit: the next writer draws its number after this one is
    -- visible. Whatever seq the inserter gave is replaced.
    PERFORM 1 FROM tessera_revocation_log_horizon FOR UPDATE;
    NEW.seq := nextval('tessera_revocation_log_seq');
    RETURN NEW;
END
$$;

CREATE TRIGGER tessera_revocation_log_order
BEFORE INSERT ON tessera_revocation_log
FOR EACH ROW EXECUTE FUNCTION tessera_revocation_log_order();

-- When each session was logged out: the instances' caches keep a logout only
-- while a token it covers can still be unexpired, and load only those. Rows
-- from before this migration get the migration's time (kept longer, never
-- shorter).
ALTER TABLE tessera_session_logouts ADD COLUMN logged_out_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX tessera_session_logouts_logged_out_at ON tessera_session_logouts (logged_out_at);

-- Cleared watermarks are deleted now (writers are ordered by the log's lock,
-- not by the watermark's row).
DELETE FROM tessera_watermarks WHERE at IS NULL;
