-- tessera: provider user events put in the provider's order, and tombstones
-- of deleted provider accounts (identity::PostgresExternalUserDirectory).
--
-- A provider's webhooks arrive at least once and in no particular order.
-- `as_of` is the latest provider instant applied to an account (Clerk's
-- `updated_at`): an upsert older than it is ignored. NULL when none was
-- seen yet (an account written before this migration, or only by
-- request-time sync from a token).
--
-- A deleted account keeps its row as a tombstone: no user (`user_id`
-- NULL), no email or name, `as_of` the instant recorded for the deletion,
-- and `deleted_at` when the directory applied it (by the database's
-- clock), from which the retention period runs. An upsert recreates the
-- user only with an `as_of` newer than the deletion's. Keeping the
-- tombstone in the account's row, not in a table of its own, makes an
-- upsert and a deletion of one account lock the same row, so that they
-- take effect one after the other.
--
-- Applies to a database migrated by 0001-0003: existing accounts are live
-- (a user, no `deleted_at`), which the new check accepts.
ALTER TABLE tessera_external_accounts
    ALTER COLUMN user_id DROP NOT NULL,
    ADD COLUMN as_of timestamptz,
    ADD COLUMN deleted_at timestamptz,
    ADD CONSTRAINT tessera_external_accounts_live_or_tombstone CHECK (
        (user_id IS NULL) = (deleted_at IS NOT NULL)
        AND (user_id IS NOT NULL OR (as_of IS NOT NULL AND email IS NULL AND name IS NULL))
    );

-- Purges read the tombstones without scanning the live accounts.
CREATE INDEX tessera_external_accounts_tombstones
    ON tessera_external_accounts (deleted_at) WHERE user_id IS NULL;
