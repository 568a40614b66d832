-- Per-tenant traffic limits. Every edge enforces them from its own cache
-- entry for the tenant's host, so a change reaches the edges as any other
-- routing change does: through tenant_changed. A tenant's own value wins
-- over its plan's; NULL in both is no limit.

CREATE TABLE plans (
    name              text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    rate_limit        numeric(12, 3) CHECK (rate_limit > 0 AND rate_limit <= 1000000),
    rate_burst        integer CHECK (rate_burst BETWEEN 0 AND 1000000),
    max_connections   integer CHECK (max_connections BETWEEN 1 AND 1000000),
    monthly_requests  bigint CHECK (monthly_requests > 0),
    monthly_bytes     bigint CHECK (monthly_bytes > 0),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE tenants
    ADD COLUMN plan text REFERENCES plans (name) ON UPDATE CASCADE,
    ADD COLUMN rate_limit numeric(12, 3)
        CHECK (rate_limit > 0 AND rate_limit <= 1000000),
    ADD COLUMN rate_burst integer CHECK (rate_burst BETWEEN 0 AND 1000000),
    ADD COLUMN max_connections integer
        CHECK (max_connections BETWEEN 1 AND 1000000),
    ADD COLUMN monthly_requests bigint CHECK (monthly_requests > 0),
    ADD COLUMN monthly_bytes bigint CHECK (monthly_bytes > 0);

CREATE INDEX tenants_plan ON tenants (plan) WHERE plan IS NOT NULL;

-- A plan's change is each of its tenants' change. Past 10,000 tenants one
-- "*" is cheaper for the registry than a notification each, and the edges
-- refill their caches on demand.
CREATE FUNCTION notify_plan_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM tenants WHERE plan = NEW.name;
    IF n > 10000 THEN
        PERFORM pg_notify('tenant_changed', '*');
    ELSE
        PERFORM pg_notify('tenant_changed', id) FROM tenants
          WHERE plan = NEW.name;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER plans_changed AFTER UPDATE ON plans
    FOR EACH ROW EXECUTE FUNCTION notify_plan_changed();

-- What a tenant's limits are, its own and as enforced (with its plan's).
CREATE FUNCTION tenant_limits_json(t tenants) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'tenant', t.id,
        'plan', t.plan,
        'own', json_build_object(
            'rate', t.rate_limit, 'burst', t.rate_burst,
            'connections', t.max_connections,
            'monthly_requests', t.monthly_requests,
            'monthly_bytes', t.monthly_bytes),
        'effective', json_build_object(
            'rate', coalesce(t.rate_limit, p.rate_limit),
            'burst', coalesce(t.rate_burst, p.rate_burst),
            'connections', coalesce(t.max_connections, p.max_connections),
            'monthly_requests', coalesce(t.monthly_requests,
                                         p.monthly_requests),
            'monthly_bytes', coalesce(t.monthly_bytes, p.monthly_bytes)))
      FROM (SELECT 1) one LEFT JOIN plans p ON p.name = t.plan
$$;

-- Replaces a tenant's limits with those of p_limits (absent or null: none
-- of its own). NULL when there is no such tenant (or it is being deleted);
-- {"error": "no_such_plan"} when p_limits names a plan that does not exist,
-- and nothing is written. A bad value fails on the columns' checks.
CREATE FUNCTION tenant_set_limits(p_name text, p_limits jsonb, p_actor text)
RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    t tenants;
BEGIN
    IF p_limits ->> 'plan' IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM plans WHERE name = p_limits ->> 'plan')
       AND EXISTS (SELECT 1 FROM tenants WHERE id = p_name
                                           AND status <> 'deleting')
    THEN
        RETURN json_build_object('error', 'no_such_plan');
    END IF;
    UPDATE tenants SET
        plan = p_limits ->> 'plan',
        rate_limit = (p_limits ->> 'rate')::numeric,
        rate_burst = (p_limits ->> 'burst')::integer,
        max_connections = (p_limits ->> 'connections')::integer,
        monthly_requests = (p_limits ->> 'monthly_requests')::bigint,
        monthly_bytes = (p_limits ->> 'monthly_bytes')::bigint,
        updated_at = now()
     WHERE id = p_name AND status <> 'deleting'
    RETURNING * INTO t;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO audit_log (actor, action, tenant_id, detail)
    VALUES (p_actor, 'tenant.limits', t.id, p_limits);
    RETURN tenant_limits_json(t);
END
$$;

-- every plan with its limits and how many tenants it has
CREATE FUNCTION plans_json() RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(json_build_object(
        'plan', p.name, 'rate', p.rate_limit, 'burst', p.rate_burst,
        'connections', p.max_connections,
        'monthly_requests', p.monthly_requests,
        'monthly_bytes', p.monthly_bytes,
        'tenants', (SELECT count(*) FROM tenants WHERE plan = p.name))
        ORDER BY p.name), '[]')
      FROM plans p
$$;

CREATE FUNCTION plan_set(p_name text, p_limits jsonb, p_actor text)
RETURNS json
LANGUAGE sql AS $$
    WITH p AS (
        INSERT INTO plans AS o (name, rate_limit, rate_burst, max_connections,
                                monthly_requests, monthly_bytes)
        VALUES (p_name, (p_limits ->> 'rate')::numeric,
                (p_limits ->> 'burst')::integer,
                (p_limits ->> 'connections')::integer,
                (p_limits ->> 'monthly_requests')::bigint,
                (p_limits ->> 'monthly_bytes')::bigint)
        ON CONFLICT (name) DO UPDATE SET
            rate_limit = EXCLUDED.rate_limit,
            rate_burst = EXCLUDED.rate_burst,
            max_connections = EXCLUDED.max_connections,
            monthly_requests = EXCLUDED.monthly_requests,
            monthly_bytes = EXCLUDED.monthly_bytes,
            updated_at = now()
        RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, detail)
          SELECT p_actor, 'plan.set', p_limits || jsonb_build_object('plan', p.name)
            FROM p)
    SELECT json_build_object('plan', p.name, 'rate', p.rate_limit,
                             'burst', p.rate_burst,
                             'connections', p.max_connections,
                             'monthly_requests', p.monthly_requests,
                             'monthly_bytes', p.monthly_bytes,
                             'tenants', (SELECT count(*) FROM tenants
                                          WHERE plan = p.name))
      FROM p
$$;
