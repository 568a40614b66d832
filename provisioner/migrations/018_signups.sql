-- People asking to join a tenant: pending until the tenant's admin
-- approves or rejects them (reason kept). Each decision is audited and
-- sent to the tenant's stack by a 'webhook' job, signed with the tenant's
-- webhook_secret: one job per decision, retried with backoff.

ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check
    CHECK (kind IN ('create', 'delete', 'suspend', 'resume', 'seed_admin',
                    'logs', 'certificate', 'backup', 'verify', 'restore',
                    'migrate', 'webhook'));

-- webhooks of a tenant go out side by side, one per decision
DROP INDEX jobs_one_pending;
CREATE UNIQUE INDEX jobs_one_pending ON jobs (tenant_id, kind)
    WHERE status IN ('queued', 'running')
      AND kind NOT IN ('logs', 'certificate', 'webhook');
CREATE UNIQUE INDEX jobs_one_webhook ON jobs ((payload ->> 'signup'))
    WHERE kind = 'webhook';

CREATE TABLE tenant_signups (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email       text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name        text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'approved', 'rejected')),
    reason      text CHECK (length(reason) <= 500),
    address     text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz,
    decided_by  text,
    UNIQUE (tenant_id, email)
);
CREATE INDEX tenant_signups_address ON tenant_signups (address, created_at);

CREATE FUNCTION signup_json(s tenant_signups) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object('id', s.id, 'tenant', s.tenant_id,
        'email', s.email, 'name', s.name, 'status', s.status,
        'reason', s.reason, 'created_at', s.created_at,
        'decided_at', s.decided_at, 'decided_by', s.decided_by)
$$;

-- The public request. state: NULL (made), 'tenant' (no such tenant, not
-- active, or not taking sign-ups: one answer, so the endpoint tells no
-- tenant's settings), 'exists', or 'rate|seconds' (p_limit requests per
-- address in p_window seconds).
CREATE FUNCTION signup_request(p_tenant text, p_email text, p_name text,
    p_address text, p_limit integer, p_window integer)
RETURNS TABLE (state text, signup json)
LANGUAGE plpgsql AS $$
DECLARE
    s       tenant_signups;
    made    integer;
    oldest  timestamptz;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant
                      AND status = 'active'
                      AND coalesce(settings ->> 'signups', 'off') = 'on') THEN
        RETURN QUERY SELECT 'tenant'::text, NULL::json;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(7340031, hashtext(p_address));
    SELECT count(*), min(created_at) INTO made, oldest FROM tenant_signups
     WHERE address = p_address
       AND created_at > now() - make_interval(secs => p_window);
    IF made >= p_limit THEN
        RETURN QUERY SELECT 'rate|' || greatest(1, ceil(extract(epoch FROM
            oldest + make_interval(secs => p_window) - now())))::text,
            NULL::json;
        RETURN;
    END IF;
    INSERT INTO tenant_signups (tenant_id, email, name, address)
    VALUES (p_tenant, lower(p_email), p_name, p_address)
    ON CONFLICT (tenant_id, email) DO NOTHING
    RETURNING * INTO s;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'exists'::text, NULL::json;
        RETURN;
    END IF;
    INSERT INTO audit_log (actor, action, tenant_id, detail)
    VALUES ('signup:' || p_address, 'signup.request', p_tenant,
            jsonb_build_object('signup', s.id, 'email', s.email));
    RETURN QUERY SELECT NULL::text, signup_json(s);
END
$$;

-- The admin's decision and its webhook job. state: NULL (decided),
-- 'signup' (the tenant has no such sign-up), or its status when it was
-- decided already.
CREATE FUNCTION signup_decide(p_tenant text, p_id bigint, p_approve boolean,
    p_reason text, p_actor text)
RETURNS TABLE (state text, signup json, job json)
LANGUAGE plpgsql AS $$
DECLARE
    s  tenant_signups;
    j  jobs;
BEGIN
    SELECT * INTO s FROM tenant_signups
     WHERE id = p_id AND tenant_id = p_tenant FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'signup'::text, NULL::json, NULL::json;
        RETURN;
    END IF;
    IF s.status <> 'pending' THEN
        RETURN QUERY SELECT s.status, signup_json(s), NULL::json;
        RETURN;
    END IF;
    UPDATE tenant_signups
       SET status = CASE WHEN p_approve THEN 'approved' ELSE 'rejected' END,
           reason = p_reason, decided_at = now(), decided_by = p_actor
     WHERE id = p_id RETURNING * INTO s;
    INSERT INTO jobs (tenant_id, kind, payload, max_attempts)
    VALUES (p_tenant, 'webhook', jsonb_build_object('signup', s.id), 8)
    RETURNING * INTO j;
    INSERT INTO audit_log (actor, action, tenant_id, detail)
    VALUES (p_actor, CASE WHEN p_approve THEN 'signup.approve'
                     ELSE 'signup.reject' END, p_tenant,
            jsonb_build_object('signup', s.id, 'email', s.email,
                               'reason', p_reason));
    RETURN QUERY SELECT NULL::text, signup_json(s), job_json(j);
END
$$;

CREATE FUNCTION tenant_signups_json(p_tenant text, p_status text)
RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant)
           THEN NULL ELSE
        (SELECT coalesce(json_agg(signup_json(s) ORDER BY s.id), '[]')
           FROM tenant_signups s
          WHERE s.tenant_id = p_tenant
            AND (p_status IS NULL OR s.status = p_status)) END
$$;

-- the tenant's sign-up settings: on or off, and the path of its stack the
-- decisions are posted to. NULL when there is no such tenant.
CREATE FUNCTION tenant_signup_settings(p_tenant text, p_enabled boolean,
    p_path text, p_actor text)
RETURNS json
LANGUAGE sql AS $$
    WITH t AS (UPDATE tenants SET settings = settings
                   || jsonb_build_object('signups',
                          CASE WHEN p_enabled THEN 'on' ELSE 'off' END,
                          'signup_webhook', p_path),
                   updated_at = now()
                WHERE id = p_tenant RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, tenant_id, detail)
          SELECT p_actor, 'signup.settings', t.id,
                 jsonb_build_object('enabled', p_enabled, 'path', p_path)
            FROM t)
    SELECT json_build_object('enabled', p_enabled, 'webhook_path', p_path)
      FROM t
$$;
