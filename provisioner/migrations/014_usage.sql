-- A tenant's use of its monthly quota, summed over every edge. Each edge
-- counts in its traffic zone and adds what it counted since its last sync
-- here (tenant_usage_add); the totals it gets back are what it enforces, so
-- a quota holds across edges and across an edge's restart. The month is
-- UTC's, as on the edges.

CREATE TABLE tenant_usage (
    tenant_id  text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    month      date NOT NULL CHECK (extract(day FROM month) = 1),
    requests   bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
    bytes      bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, month)
);

-- Adds an edge's counts (months as months since January 1970, as the edges
-- keep them) and answers each tenant's totals for that month. Tenants that
-- no longer exist are left out, so one deleted tenant cannot fail a batch.
CREATE FUNCTION tenant_usage_add(p_ids text[], p_months integer[],
                                 p_requests bigint[], p_bytes bigint[])
RETURNS TABLE (tenant_id text, month integer, requests bigint, bytes bigint)
LANGUAGE sql AS $$
    INSERT INTO tenant_usage AS u (tenant_id, month, requests, bytes)
    SELECT a.id, make_date(1970 + a.m / 12, a.m % 12 + 1, 1),
           sum(a.r), sum(a.b)
      FROM unnest(p_ids, p_months, p_requests, p_bytes) AS a (id, m, r, b)
      JOIN tenants t ON t.id = a.id
     WHERE a.m >= 0 AND a.r >= 0 AND a.b >= 0
     GROUP BY a.id, a.m
    ON CONFLICT ON CONSTRAINT tenant_usage_pkey DO UPDATE SET
        requests = u.requests + EXCLUDED.requests,
        bytes = u.bytes + EXCLUDED.bytes,
        updated_at = now()
    RETURNING u.tenant_id,
              ((extract(year FROM u.month) - 1970) * 12
               + extract(month FROM u.month) - 1)::integer,
              u.requests, u.bytes
$$;

-- The limits, with this month's use so far.
CREATE OR REPLACE FUNCTION tenant_limits_json(t tenants) RETURNS json
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
            'monthly_bytes', coalesce(t.monthly_bytes, p.monthly_bytes)),
        'usage', json_build_object(
            'month', to_char(date_trunc('month', now() AT TIME ZONE 'UTC'),
                             'YYYY-MM'),
            'requests', coalesce(u.requests, 0),
            'bytes', coalesce(u.bytes, 0)))
      FROM (SELECT 1) one
      LEFT JOIN plans p ON p.name = t.plan
      LEFT JOIN tenant_usage u
             ON u.tenant_id = t.id
            AND u.month = date_trunc('month', now() AT TIME ZONE 'UTC')::date
$$;
