-- tessera: the user directory read by PostgresUserDirectory when sessions
-- rotate. `role` is the role type's wire name (Role::name); a name the
-- application's role type does not know is reported as an invalid record,
-- never mapped to a default.
CREATE TABLE tessera_users (
    id uuid PRIMARY KEY CHECK (id <> '00000000-0000-0000-0000-000000000000'),
    role text NOT NULL CHECK (role <> ''),
    capabilities text[] NOT NULL DEFAULT '{}',
    tenant text CHECK (tenant ~ '^[A-Za-z0-9._-]{1,64}$'),
    enabled boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);
