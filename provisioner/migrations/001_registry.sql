-- First registry schema. Constraints keep bad data out whatever the writer:
-- the API, the provisioner, or an operator in psql.

CREATE TABLE tenants (
    id            text PRIMARY KEY
                  CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,28}[a-z0-9]$' AND id !~ '--'),
    display_name  text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    blueprint     text NOT NULL CHECK (blueprint ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    theme         text NOT NULL DEFAULT 'default'
                  CHECK (theme ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    mode          text NOT NULL DEFAULT 'dedicated'
                  CHECK (mode IN ('dedicated', 'shared')),
    status        text NOT NULL DEFAULT 'provisioning'
                  CHECK (status IN ('provisioning', 'active', 'suspended',
                                    'failed', 'deleting')),
    settings      jsonb NOT NULL DEFAULT '{}'
                  CHECK (jsonb_typeof(settings) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Exact hosts: custom domains (and any generated host an operator wants to
-- pin). Hosts matched by the nginx host patterns need no row here.
CREATE TABLE tenant_hosts (
    host        text PRIMARY KEY
                CHECK (length(host) <= 253
                       AND host ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role        text NOT NULL DEFAULT 'site' CHECK (role IN ('site', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_hosts_tenant ON tenant_hosts (tenant_id);

CREATE TABLE tenant_endpoints (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('site', 'admin')),
    address     text NOT NULL
                CHECK (address ~ '^(unix:/[^[:space:]]{1,100}|[0-9]{1,3}(\.[0-9]{1,3}){3}:[0-9]{1,5}|\[[0-9a-f:.]+\]:[0-9]{1,5})$'),
    weight      integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 100),
    service     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, role, address)
);

CREATE TABLE jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- no foreign key: a delete job outlives its tenant's row
    tenant_id        text,
    kind             text NOT NULL
                     CHECK (kind IN ('create', 'delete', 'suspend', 'resume',
                                     'seed_admin', 'logs')),
    payload          jsonb NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    error            text,
    result           jsonb,
    idempotency_key  text UNIQUE,
    claimed_by       text,
    lease_until      timestamptz,
    run_after        timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE INDEX jobs_pending ON jobs (run_after) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_tenant ON jobs (tenant_id);

-- Keys are shown once; only the SHA-256 of the secret part is kept.
CREATE TABLE api_keys (
    id          text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    key_hash    bytea NOT NULL CHECK (length(key_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,
    tenant_id  text,
    detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, at);
