-- What each provisioner's health checks found last (provisioner check, run
-- by the daemon every check_interval): GET /api/health?deep reads them, so
-- an edge reports disk and jobs of machines it cannot see.

CREATE TABLE health_checks (
    provisioner  text NOT NULL,
    name         text NOT NULL CHECK (name ~ '^[a-z_]{1,64}$'),
    status       text NOT NULL CHECK (status IN ('ok', 'warning', 'critical')),
    value        double precision,
    warning      double precision,
    critical     double precision,
    detail       text NOT NULL DEFAULT '',
    checked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provisioner, name)
);

-- the checks as one JSON document: each with its provisioner, and a
-- provisioner silent for longer than stale_after is itself critical
CREATE FUNCTION health_checks_json(stale_after interval) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'status', CASE
            WHEN count(*) = 0 THEN 'unknown'
            WHEN bool_or(status = 'critical' OR checked_at < now() - stale_after)
                THEN 'critical'
            WHEN bool_or(status = 'warning') THEN 'warning'
            ELSE 'ok' END,
        'checks', coalesce(json_agg(json_build_object(
            'provisioner', provisioner, 'name', name,
            'status', CASE WHEN checked_at < now() - stale_after
                           THEN 'critical' ELSE status END,
            'value', value, 'warning', warning, 'critical', critical,
            'detail', CASE WHEN checked_at < now() - stale_after
                           THEN 'not checked since ' || checked_at::text
                           ELSE detail END,
            'checked_at', checked_at) ORDER BY provisioner, name), '[]'))
      FROM health_checks
$$;
