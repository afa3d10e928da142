-- tessera: provider accounts linked to local users, read and written by
-- identity::PostgresExternalUserDirectory (ResolveUser, ExchangeToken and
-- the provider's webhooks).
--
-- A provider account is `(issuer, subject)`: the provider's `iss` and its
-- account id (`sub`). Each links to exactly one `tessera_users` row, which
-- keeps the role, capabilities, tenant and enabled flag that sessions
-- rotate with; email and name live here because they are the provider's.
--
-- The link's foreign key is checked at commit (DEFERRABLE INITIALLY
-- DEFERRED) so that an upsert can claim the account first, with
-- `INSERT .. ON CONFLICT (issuer, subject) DO UPDATE .. RETURNING`, and
-- create the user afterwards in the same transaction: concurrent first
-- upserts of one account serialise on that row and create one user.
-- Deleting the user deletes the link.
CREATE TABLE tessera_external_accounts (
    issuer text NOT NULL CHECK (issuer <> ''),
    subject text NOT NULL CHECK (subject <> '' AND octet_length(subject) <= 255),
    user_id uuid NOT NULL UNIQUE
        REFERENCES tessera_users (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    email text,
    name text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
