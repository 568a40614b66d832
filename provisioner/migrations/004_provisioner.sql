-- What the provisioner records, and the tenant mutations shared by the
-- admin API (nginx) and the CLI, so both write jobs exactly alike.

-- Ports handed to tenant services; the primary key is what keeps two
-- provisioners from giving one port twice. Freed with the tenant.
CREATE TABLE tenant_ports (
    port        integer PRIMARY KEY CHECK (port BETWEEN 1 AND 65535),
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    service     text NOT NULL CHECK (service ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    UNIQUE (tenant_id, service)
);

-- Per-tenant secrets (database password, {{secret:NAME}}), AES-256-GCM
-- under the provisioner's key: the registry alone does not reveal them.
CREATE TABLE tenant_secrets (
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    nonce       bytea NOT NULL CHECK (length(nonce) = 12),
    ciphertext  bytea NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- steps a job has finished, so a resumed job skips them
ALTER TABLE jobs ADD COLUMN steps jsonb NOT NULL DEFAULT '{}';

CREATE FUNCTION tenant_json(t tenants) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object('name', t.id, 'display_name', t.display_name,
        'blueprint', t.blueprint, 'theme', t.theme, 'mode', t.mode,
        'status', t.status, 'created_at', t.created_at,
        'updated_at', t.updated_at)
$$;

-- a job's payload may hold secrets (seed_admin): it is never shown
CREATE FUNCTION job_json(j jobs) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object('id', j.id, 'tenant', j.tenant_id,
        'kind', j.kind, 'status', j.status, 'attempts', j.attempts,
        'error', j.error, 'result', j.result, 'created_at', j.created_at,
        'updated_at', j.updated_at, 'finished_at', j.finished_at)
$$;

-- Each returns one row: state (create: what is wrong, NULL if fine; others:
-- the tenant's status before, NULL if there is no such tenant), the job
-- made (NULL if none) and the tenant.

CREATE FUNCTION tenant_create(p_name text, p_blueprint text, p_theme text,
    p_mode text, p_display_name text, p_idem text, p_actor text)
RETURNS TABLE (state text, job json, tenant json)
LANGUAGE sql AS $$
    WITH bp AS (SELECT themes, modes FROM blueprints WHERE name = p_blueprint),
    chk AS (SELECT CASE
        WHEN NOT EXISTS (SELECT 1 FROM bp) THEN 'blueprint'
        WHEN NOT EXISTS (SELECT 1 FROM bp WHERE p_theme = ANY (themes)) THEN 'theme'
        WHEN NOT EXISTS (SELECT 1 FROM bp WHERE p_mode = ANY (modes)) THEN 'mode'
        END AS bad),
    t AS (INSERT INTO tenants (id, display_name, blueprint, theme, mode, status)
          SELECT p_name, p_display_name, p_blueprint, p_theme, p_mode,
                 'provisioning'
            FROM chk WHERE bad IS NULL RETURNING *),
    j AS (INSERT INTO jobs (tenant_id, kind, payload, idempotency_key)
          SELECT t.id, 'create', jsonb_build_object('blueprint', t.blueprint,
                 'theme', t.theme, 'mode', t.mode), p_idem FROM t RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, tenant_id, detail)
          SELECT p_actor, 'tenant.create', t.id, jsonb_build_object(
                 'blueprint', t.blueprint, 'theme', t.theme, 'mode', t.mode,
                 'display_name', t.display_name) FROM t)
    SELECT (SELECT bad FROM chk), (SELECT job_json(j) FROM j),
           (SELECT tenant_json(t) FROM t)
$$;

CREATE FUNCTION tenant_delete(p_name text, p_idem text, p_actor text)
RETURNS TABLE (state text, job json, tenant json)
LANGUAGE sql AS $$
    WITH cur AS (SELECT status FROM tenants WHERE id = p_name),
    t AS (UPDATE tenants SET status = 'deleting', updated_at = now()
           WHERE id = p_name AND status <> 'deleting' RETURNING *),
    j AS (INSERT INTO jobs (tenant_id, kind, idempotency_key)
          SELECT t.id, 'delete', p_idem FROM t RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, tenant_id)
          SELECT p_actor, 'tenant.delete', t.id FROM t)
    SELECT (SELECT status FROM cur), (SELECT job_json(j) FROM j),
           (SELECT tenant_json(t) FROM t)
$$;

-- suspending stops routing at once; the job stops the stack
CREATE FUNCTION tenant_suspend(p_name text, p_idem text, p_actor text)
RETURNS TABLE (state text, job json, tenant json)
LANGUAGE sql AS $$
    WITH cur AS (SELECT status FROM tenants WHERE id = p_name),
    t AS (UPDATE tenants SET status = 'suspended', updated_at = now()
           WHERE id = p_name AND status = 'active' RETURNING *),
    j AS (INSERT INTO jobs (tenant_id, kind, idempotency_key)
          SELECT t.id, 'suspend', p_idem FROM t RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, tenant_id)
          SELECT p_actor, 'tenant.suspend', t.id FROM t)
    SELECT (SELECT status FROM cur), (SELECT job_json(j) FROM j),
           (SELECT tenant_json(t) FROM t)
$$;

-- resuming: the provisioner marks the tenant active once its stack runs
CREATE FUNCTION tenant_resume(p_name text, p_idem text, p_actor text)
RETURNS TABLE (state text, job json, tenant json)
LANGUAGE sql AS $$
    WITH cur AS (SELECT status FROM tenants WHERE id = p_name),
    t AS (SELECT * FROM tenants WHERE id = p_name AND status = 'suspended'),
    j AS (INSERT INTO jobs (tenant_id, kind, idempotency_key)
          SELECT t.id, 'resume', p_idem FROM t RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, tenant_id)
          SELECT p_actor, 'tenant.resume', t.id FROM t)
    SELECT (SELECT status FROM cur), (SELECT job_json(j) FROM j),
           (SELECT tenant_json(t) FROM t)
$$;

CREATE FUNCTION tenant_seed_admin(p_name text, p_email text, p_password text,
    p_idem text, p_actor text)
RETURNS TABLE (state text, job json, tenant json)
LANGUAGE sql AS $$
    WITH cur AS (SELECT status FROM tenants WHERE id = p_name),
    t AS (SELECT * FROM tenants WHERE id = p_name
             AND status IN ('active', 'suspended')),
    j AS (INSERT INTO jobs (tenant_id, kind, payload, idempotency_key)
          SELECT t.id, 'seed_admin', jsonb_build_object('email', p_email,
                 'password', p_password), p_idem FROM t RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, tenant_id, detail)
          SELECT p_actor, 'tenant.seed_admin', t.id,
                 jsonb_build_object('email', p_email) FROM t)
    SELECT (SELECT status FROM cur), (SELECT job_json(j) FROM j),
           (SELECT tenant_json(t) FROM t)
$$;

CREATE FUNCTION tenant_logs(p_name text, p_lines integer)
RETURNS TABLE (state text, job json, tenant json)
LANGUAGE sql AS $$
    WITH t AS (SELECT * FROM tenants WHERE id = p_name),
    j AS (INSERT INTO jobs (tenant_id, kind, payload)
          SELECT t.id, 'logs', jsonb_build_object('lines', p_lines)
            FROM t RETURNING *)
    SELECT (SELECT status FROM t), (SELECT job_json(j) FROM j),
           (SELECT tenant_json(t) FROM t)
$$;

-- Reads a job; a finished create job's admin password goes to the first
-- reader and is removed by the same statement: shown once, never again.
CREATE FUNCTION job_read(p_id bigint)
RETURNS TABLE (finished boolean, job json, tenant json)
LANGUAGE sql AS $$
    WITH j AS (SELECT * FROM jobs WHERE id = p_id FOR UPDATE),
    s AS (UPDATE jobs SET result = jobs.result #- '{admin,password}',
                 revealed_at = now()
            FROM j WHERE jobs.id = j.id AND j.status = 'done'
             AND j.result #> '{admin,password}' IS NOT NULL)
    SELECT j.status IN ('done', 'failed'), job_json(j),
           (SELECT tenant_json(t) FROM tenants t WHERE t.id = j.tenant_id)
      FROM j
$$;
