-- Daily use: routing-only tenants, the platform's drivers, a creation
-- limit that counts only accepted creates, errors that say what is valid.

-- Tenants made by a create job are the provisioner's; rows an operator
-- inserts by hand (routing only) are left alone by the reconciler.
ALTER TABLE tenants ADD COLUMN managed boolean NOT NULL DEFAULT false;
UPDATE tenants t SET managed = true
 WHERE EXISTS (SELECT 1 FROM jobs j
                WHERE j.tenant_id = t.id AND j.kind = 'create');

-- whoever queues the create (API, CLI, psql), the tenant becomes managed
CREATE FUNCTION jobs_mark_managed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tenants SET managed = true
     WHERE id = NEW.tenant_id AND NOT managed;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_mark_managed AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.kind = 'create')
    EXECUTE FUNCTION jobs_mark_managed();

-- Each provisioner says which driver it runs, so the API can refuse a
-- blueprint that no provisioner of this platform could run.
CREATE TABLE provisioners (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,64}$'),
    driver      text NOT NULL CHECK (driver ~ '^[a-z0-9_-]{1,32}$'),
    seen_at     timestamptz NOT NULL DEFAULT now()
);

-- how the creation limit finds a key's recent creates
CREATE INDEX audit_log_creates ON audit_log (actor, at)
    WHERE action = 'tenant.create';

DROP FUNCTION tenant_create(text, text, text, text, text, text, text);

-- state, when nothing was made, is "field|message" (field: blueprint,
-- theme, mode, driver) or "rate|seconds" (p_limit creates by this actor
-- in the last p_window seconds; 0 means no limit).
CREATE FUNCTION tenant_create(p_name text, p_blueprint text, p_theme text,
    p_mode text, p_display_name text, p_idem text, p_actor text,
    p_limit integer, p_window integer)
RETURNS TABLE (state text, job json, tenant json)
LANGUAGE plpgsql AS $$
DECLARE
    bp       blueprints;
    drivers  text[];
    have     text[];
    oldest   timestamptz;
    made     integer;
    t        tenants;
    j        jobs;
BEGIN
    -- internal blueprints (shared runtimes) are the platform's to run
    SELECT * INTO bp FROM blueprints WHERE name = p_blueprint
       AND coalesce(definition ->> 'internal', 'false') <> 'true';
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'blueprint|no blueprint "' || p_blueprint
            || '"; valid: ' || coalesce((SELECT string_agg(name, ', '
                ORDER BY name) FROM blueprints WHERE coalesce(definition
                ->> 'internal', 'false') <> 'true'), 'none'), NULL::json,
            NULL::json;
        RETURN;
    END IF;
    IF NOT p_theme = ANY (bp.themes) THEN
        RETURN QUERY SELECT 'theme|blueprint ' || bp.name || ' has no theme "'
            || p_theme || '"; valid: ' || array_to_string(bp.themes, ', '),
            NULL::json, NULL::json;
        RETURN;
    END IF;
    IF NOT p_mode = ANY (bp.modes) THEN
        RETURN QUERY SELECT 'mode|blueprint ' || bp.name || ' has no mode "'
            || p_mode || '"; valid: ' || array_to_string(bp.modes, ', '),
            NULL::json, NULL::json;
        RETURN;
    END IF;

    SELECT array_agg(DISTINCT driver ORDER BY driver) INTO have
      FROM provisioners;
    drivers := ARRAY(SELECT jsonb_array_elements_text(
                        bp.definition -> 'drivers'));
    IF have IS NOT NULL AND cardinality(drivers) > 0
       AND NOT drivers && have
    THEN
        RETURN QUERY SELECT 'driver|blueprint ' || bp.name || ' needs the '
            || array_to_string(drivers, ' or ') || ' driver; this platform'
            || '''s provisioners run ' || array_to_string(have, ', '),
            NULL::json, NULL::json;
        RETURN;
    END IF;

    IF p_limit > 0 THEN
        -- one creator at a time per actor, so the count cannot be raced
        PERFORM pg_advisory_xact_lock(7340013, hashtext(p_actor));
        SELECT count(*), min(at) INTO made, oldest FROM audit_log
         WHERE action = 'tenant.create' AND actor = p_actor
           AND at > now() - make_interval(secs => p_window);
        IF made >= p_limit THEN
            RETURN QUERY SELECT 'rate|' || greatest(1, ceil(extract(epoch FROM
                oldest + make_interval(secs => p_window) - now())))::text,
                NULL::json, NULL::json;
            RETURN;
        END IF;
    END IF;

    INSERT INTO tenants (id, display_name, blueprint, theme, mode, status,
                         managed)
    VALUES (p_name, p_display_name, p_blueprint, p_theme, p_mode,
            'provisioning', true)
    RETURNING * INTO t;
    INSERT INTO jobs (tenant_id, kind, payload, idempotency_key)
    VALUES (t.id, 'create', jsonb_build_object('blueprint', t.blueprint,
            'theme', t.theme, 'mode', t.mode), p_idem)
    RETURNING * INTO j;
    INSERT INTO audit_log (actor, action, tenant_id, detail)
    VALUES (p_actor, 'tenant.create', t.id, jsonb_build_object(
            'blueprint', t.blueprint, 'theme', t.theme, 'mode', t.mode,
            'display_name', t.display_name));
    RETURN QUERY SELECT NULL::text, job_json(j), tenant_json(t);
END
$$;

-- One tenant with its domains, endpoints and last job: the API's GET and
-- the CLI's show.
CREATE FUNCTION tenant_detail(p_name text) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT (tenant_json(t)::jsonb || jsonb_build_object(
        'managed', t.managed,
        'domains', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'host', h.host, 'role', h.role) ORDER BY h.host),
                    '[]') FROM tenant_hosts h WHERE h.tenant_id = t.id),
        'endpoints', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'role', e.role, 'address', e.address,
                        'weight', e.weight) ORDER BY e.id), '[]')
                      FROM tenant_endpoints e WHERE e.tenant_id = t.id),
        'last_job', (SELECT job_json(j) FROM jobs j
                      WHERE j.tenant_id = t.id ORDER BY j.id DESC LIMIT 1)
        ))::json
      FROM tenants t WHERE t.id = p_name
$$;

-- Custom domains, shared by the API and the CLI. Each returns the tenant's
-- status (NULL: no such tenant) and the domain written (NULL: none).
CREATE FUNCTION tenant_domain_add(p_name text, p_host text, p_role text,
    p_actor text)
RETURNS TABLE (state text, domain json)
LANGUAGE sql AS $$
    WITH cur AS (SELECT status FROM tenants WHERE id = p_name),
    t AS (SELECT * FROM tenants WHERE id = p_name AND status <> 'deleting'),
    h AS (INSERT INTO tenant_hosts (host, tenant_id, role)
          SELECT p_host, t.id, p_role FROM t RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, tenant_id, detail)
          SELECT p_actor, 'domain.add', h.tenant_id,
                 jsonb_build_object('host', h.host, 'role', h.role) FROM h)
    SELECT (SELECT status FROM cur),
           (SELECT json_build_object('host', h.host, 'tenant', h.tenant_id,
                   'role', h.role, 'created_at', h.created_at) FROM h)
$$;

CREATE FUNCTION tenant_domain_remove(p_name text, p_host text, p_actor text)
RETURNS TABLE (state text, domain json)
LANGUAGE sql AS $$
    WITH h AS (DELETE FROM tenant_hosts WHERE host = p_host
                  AND tenant_id = p_name RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, tenant_id, detail)
          SELECT p_actor, 'domain.remove', h.tenant_id,
                 jsonb_build_object('host', h.host) FROM h)
    SELECT (SELECT status FROM tenants WHERE id = p_name),
           (SELECT json_build_object('host', h.host, 'tenant', h.tenant_id,
                   'role', h.role) FROM h)
$$;

-- Listings, newest first, keyset-paginated by id (p_before: '' for the
-- first page). Each returns the page and the cursor of the next (NULL at
-- the end).
CREATE FUNCTION job_list(p_tenant text, p_status text, p_before bigint,
    p_limit integer)
RETURNS TABLE (page json, next text)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(job_json(j) ORDER BY j.id DESC), '[]'),
           CASE WHEN count(*) = p_limit THEN min(j.id)::text END
      FROM (SELECT * FROM jobs
             WHERE (p_tenant IS NULL OR tenant_id = p_tenant)
               AND (p_status IS NULL OR status = p_status)
               AND (p_before IS NULL OR id < p_before)
             ORDER BY id DESC LIMIT p_limit) j
$$;

CREATE FUNCTION audit_list(p_tenant text, p_before bigint, p_limit integer)
RETURNS TABLE (page json, next text)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(json_build_object('id', a.id, 'at', a.at,
               'actor', a.actor, 'action', a.action, 'tenant', a.tenant_id,
               'detail', a.detail) ORDER BY a.id DESC), '[]'),
           CASE WHEN count(*) = p_limit THEN min(a.id)::text END
      FROM (SELECT * FROM audit_log
             WHERE (p_tenant IS NULL OR tenant_id = p_tenant)
               AND (p_before IS NULL OR id < p_before)
             ORDER BY id DESC LIMIT p_limit) a
$$;

-- What can be created here: each blueprint with its themes, modes and the
-- drivers it needs, and whether this platform's provisioners run one of
-- them (NULL while no provisioner has said which driver it runs).
CREATE FUNCTION blueprint_list() RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'blueprints', (SELECT coalesce(json_agg(json_build_object(
            'name', b.name,
            'description', b.definition ->> 'description',
            'themes', b.themes, 'modes', b.modes,
            'drivers', coalesce(b.definition -> 'drivers', '[]'),
            'runnable', CASE WHEN NOT EXISTS (SELECT 1 FROM provisioners)
                             THEN NULL
                             ELSE EXISTS (SELECT 1 FROM provisioners p
                                 WHERE b.definition -> 'drivers' ? p.driver)
                        END) ORDER BY b.name), '[]') FROM blueprints b
            WHERE coalesce(b.definition ->> 'internal', 'false') <> 'true'),
        'platform_drivers', (SELECT coalesce(json_agg(DISTINCT driver),
                             '[]') FROM provisioners))
$$;

-- Reading logs goes through a job: bounded. A logs job already pending for
-- the tenant is shared (coalesced) by every caller; one caller (p_actor)
-- may start at most p_limit a minute ("rate|seconds" in state, like
-- tenant_create); finished logs jobs older than ten minutes are dropped.
CREATE INDEX jobs_logs_recent ON jobs (created_at) WHERE kind = 'logs';

CREATE FUNCTION tenant_logs(p_name text, p_lines integer, p_actor text,
    p_limit integer)
RETURNS TABLE (state text, job json, tenant json)
LANGUAGE plpgsql AS $$
DECLARE
    t       tenants;
    j       jobs;
    made    integer;
    oldest  timestamptz;
BEGIN
    SELECT * INTO t FROM tenants WHERE id = p_name;
    IF NOT FOUND THEN
        RETURN QUERY SELECT NULL::text, NULL::json, NULL::json;
        RETURN;
    END IF;

    -- one pending logs job per tenant at a time (the lock makes it so)
    PERFORM pg_advisory_xact_lock(7340016, hashtext(p_name));
    SELECT * INTO j FROM jobs WHERE tenant_id = p_name AND kind = 'logs'
       AND status IN ('queued', 'running') ORDER BY id LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT t.status, job_json(j), tenant_json(t);
        RETURN;
    END IF;

    IF p_actor IS NOT NULL AND p_limit > 0 THEN
        SELECT count(*), min(created_at) INTO made, oldest FROM jobs
         WHERE kind = 'logs' AND payload ->> 'by' = p_actor
           AND created_at > now() - interval '1 minute';
        IF made >= p_limit THEN
            RETURN QUERY SELECT 'rate|' || greatest(1, ceil(extract(epoch
                FROM oldest + interval '1 minute' - now())))::text,
                NULL::json, NULL::json;
            RETURN;
        END IF;
    END IF;

    DELETE FROM jobs WHERE tenant_id = p_name AND kind = 'logs'
       AND finished_at < now() - interval '10 minutes';

    INSERT INTO jobs (tenant_id, kind, payload)
    VALUES (p_name, 'logs', jsonb_build_object('lines', p_lines,
            'by', p_actor))
    RETURNING * INTO j;
    RETURN QUERY SELECT t.status, job_json(j), tenant_json(t);
END
$$;

-- Each tenant's services run as a user of their own: a numeric uid (and
-- the same gid) from the provisioner's uid_min..uid_max, handed out once
-- (the primary key keeps two provisioners from giving one uid twice) and
-- freed with the tenant.
CREATE TABLE tenant_uids (
    uid         integer PRIMARY KEY CHECK (uid >= 1000),
    tenant_id   text NOT NULL UNIQUE REFERENCES tenants (id) ON DELETE CASCADE
);
