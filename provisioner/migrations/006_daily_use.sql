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
    SELECT * INTO bp FROM blueprints WHERE name = p_blueprint;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'blueprint|no blueprint "' || p_blueprint
            || '"; valid: ' || coalesce((SELECT string_agg(name, ', '
                ORDER BY name) FROM blueprints), 'none'), NULL::json,
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
