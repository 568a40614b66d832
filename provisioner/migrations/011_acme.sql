-- Automatic certificates (ACME, RFC 8555). The provisioner keeps one
-- account per CA directory, its key sealed here so any provisioner can
-- take any order. Each name the platform wants a certificate for is an
-- acme_names row; an order is a 'certificate' job, and the CA's order is
-- recorded (acme_orders) before it is asked for, so a job resumed after a
-- crash continues it instead of asking again.

ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check
    CHECK (kind IN ('create', 'delete', 'suspend', 'resume', 'seed_admin',
                    'logs', 'certificate'));

-- a tenant may have several domains ordering at once: one job per name
DROP INDEX jobs_one_pending;
CREATE UNIQUE INDEX jobs_one_pending ON jobs (tenant_id, kind)
    WHERE status IN ('queued', 'running') AND kind NOT IN ('logs', 'certificate');
CREATE UNIQUE INDEX jobs_one_certificate ON jobs ((payload ->> 'host'))
    WHERE status IN ('queued', 'running') AND kind = 'certificate';

-- The key is PEM sealed with the provisioners' secret key (associated
-- data "ngx_tenant/acme-account/1" NUL directory).
CREATE TABLE acme_accounts (
    directory   text PRIMARY KEY CHECK (directory ~ '^https://' AND length(directory) <= 1000),
    key_nonce   bytea NOT NULL CHECK (length(key_nonce) = 12),
    key_sealed  bytea NOT NULL CHECK (length(key_sealed) BETWEEN 32 AND 8192),
    url         text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE acme_names (
    host          text PRIMARY KEY
                  CHECK (length(host) <= 253
                         AND host ~ '^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
    tenant_id     text REFERENCES tenants (id) ON DELETE CASCADE,
    challenge     text NOT NULL CHECK (challenge IN ('http-01', 'dns-01')),
    -- set with each certificate: 2/3 of its life, less up to 1/12 of jitter
    renew_after   timestamptz,
    failures      integer NOT NULL DEFAULT 0,
    last_error    text,
    last_error_at timestamptz,
    next_try_at   timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Every order asked of a CA. The per-hour cap counts these rows; the
-- newest open one of a name is what a resumed job continues. The
-- certificate's key is made before the order (sealed, associated data
-- "ngx_tenant/acme-order/1" NUL host) so a resumed job signs the same CSR.
CREATE TABLE acme_orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host        text NOT NULL,
    directory   text NOT NULL,
    job_id      bigint,
    url         text,
    key_nonce   bytea NOT NULL CHECK (length(key_nonce) = 12),
    key_sealed  bytea NOT NULL CHECK (length(key_sealed) BETWEEN 32 AND 8192),
    status      text NOT NULL DEFAULT 'creating'
                CHECK (status IN ('creating', 'pending', 'ready', 'processing',
                                  'valid', 'invalid', 'abandoned')),
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX acme_orders_recent ON acme_orders (created_at);
CREATE INDEX acme_orders_host ON acme_orders (host, id);

-- The names the platform wants certificates for, and nothing else: custom
-- domains of live tenants that are verified (or every custom domain when
-- the platform does not verify), and the platform's wildcard when it has
-- a DNS hook to prove it with (p_wildcard NULL otherwise).
CREATE FUNCTION acme_wanted(p_wildcard text, p_verification boolean)
RETURNS TABLE (host text, tenant_id text, challenge text)
LANGUAGE sql STABLE AS $$
    SELECT h.host, h.tenant_id, 'http-01'
      FROM tenant_hosts h JOIN tenants t ON t.id = h.tenant_id
     WHERE t.status IN ('active', 'suspended')
       AND (NOT p_verification
            OR EXISTS (SELECT 1 FROM domain_claims c
                        WHERE c.host = h.host AND c.tenant_id = h.tenant_id
                          AND c.status = 'verified'))
    UNION ALL
    SELECT p_wildcard, NULL, 'dns-01' WHERE p_wildcard IS NOT NULL
$$;

-- One scheduling pass: names no longer wanted are forgotten (never
-- renewed: their certificate went with the domain, or expires), new ones
-- are added, and a job is queued for each name that has no certificate or
-- whose automatic one is due for renewal. An operator's uploaded
-- certificate is left alone. The count of jobs queued.
CREATE FUNCTION acme_schedule(p_wildcard text, p_verification boolean,
    p_limit integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM acme_names a
     WHERE NOT EXISTS (SELECT 1 FROM acme_wanted(p_wildcard, p_verification) w
                        WHERE w.host = a.host
                          AND w.tenant_id IS NOT DISTINCT FROM a.tenant_id);
    INSERT INTO acme_names (host, tenant_id, challenge)
    SELECT w.host, w.tenant_id, w.challenge
      FROM acme_wanted(p_wildcard, p_verification) w
    ON CONFLICT (host) DO NOTHING;

    INSERT INTO jobs (tenant_id, kind, payload, max_attempts)
    SELECT a.tenant_id, 'certificate', jsonb_build_object('host', a.host), 3
      FROM acme_names a LEFT JOIN certificates c ON c.host = a.host
     WHERE a.next_try_at <= now()
       AND (c.host IS NULL
            OR (c.source = 'automatic'
                AND coalesce(a.renew_after,
                             c.not_before + (c.not_after - c.not_before) * 2 / 3)
                    <= now()))
       AND NOT EXISTS (SELECT 1 FROM jobs j
                        WHERE j.kind = 'certificate'
                          AND j.status IN ('queued', 'running')
                          AND j.payload ->> 'host' = a.host)
     ORDER BY a.next_try_at
     LIMIT p_limit
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Before a new order is asked of the CA: at most p_cap orders an hour
-- across every provisioner (the lock makes the count and the insert one
-- step). Returns the order's id, or NULL and the seconds until one may go.
CREATE FUNCTION acme_order_begin(p_host text, p_directory text, p_job bigint,
    p_nonce bytea, p_sealed bytea, p_cap integer)
RETURNS TABLE (id bigint, wait_seconds integer)
LANGUAGE plpgsql AS $$
DECLARE
    n       integer;
    oldest  timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(1785688436, 0);
    SELECT count(*), min(o.created_at) INTO n, oldest FROM acme_orders o
     WHERE o.created_at > now() - interval '1 hour';
    IF n >= p_cap THEN
        RETURN QUERY SELECT NULL::bigint,
            greatest(1, ceil(extract(epoch FROM
                oldest + interval '1 hour' - now())))::integer;
        RETURN;
    END IF;
    RETURN QUERY INSERT INTO acme_orders (host, directory, job_id, key_nonce,
                                          key_sealed)
                 VALUES (p_host, p_directory, p_job, p_nonce, p_sealed)
                 RETURNING acme_orders.id, 0;
END $$;

-- A certificate the CA issued, stored when its name is still wanted (by
-- the same tenant): the certificate row, the name's renewal time, the
-- order closed, the challenge answers gone. NULL when the name is no
-- longer wanted (nothing is stored).
CREATE FUNCTION certificate_put_automatic(p_host text, p_tenant text,
    p_chain bytea, p_nonce bytea, p_sealed bytea, p_names text,
    p_issuer text, p_key_type text, p_not_before timestamptz,
    p_not_after timestamptz, p_order bigint, p_wildcard text,
    p_verification boolean)
RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    c certificates;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM acme_wanted(p_wildcard, p_verification) w
                    WHERE w.host = p_host
                      AND w.tenant_id IS NOT DISTINCT FROM p_tenant)
    THEN
        UPDATE acme_orders SET status = 'abandoned', updated_at = now(),
               error = 'the name is no longer registered and verified'
         WHERE id = p_order;
        RETURN NULL;
    END IF;
    INSERT INTO certificates (host, tenant_id, chain, key_nonce, key_sealed,
                              names, issuer, key_type, not_before, not_after,
                              source)
    VALUES (p_host, p_tenant, p_chain, p_nonce, p_sealed, p_names, p_issuer,
            p_key_type, p_not_before, p_not_after, 'automatic')
    ON CONFLICT (host) DO UPDATE
       SET tenant_id = EXCLUDED.tenant_id, chain = EXCLUDED.chain,
           key_nonce = EXCLUDED.key_nonce, key_sealed = EXCLUDED.key_sealed,
           names = EXCLUDED.names, issuer = EXCLUDED.issuer,
           key_type = EXCLUDED.key_type, not_before = EXCLUDED.not_before,
           not_after = EXCLUDED.not_after, source = 'automatic',
           updated_at = now()
    RETURNING * INTO c;
    UPDATE acme_names
       SET renew_after = p_not_before + (p_not_after - p_not_before) * 2 / 3
                         - (p_not_after - p_not_before) / 12 * random(),
           failures = 0, last_error = NULL, last_error_at = NULL,
           next_try_at = now()
     WHERE host = p_host;
    UPDATE acme_orders SET status = 'valid', error = NULL, updated_at = now()
     WHERE id = p_order;
    DELETE FROM acme_challenges WHERE host = p_host;
    INSERT INTO audit_log (actor, action, tenant_id, detail)
    VALUES ('acme', 'certificate.issued', p_tenant,
            jsonb_build_object('host', p_host, 'not_after', p_not_after,
                               'issuer', p_issuer, 'order', p_order));
    RETURN certificate_json(c);
END $$;

-- A failed attempt: why, and when the next job may start (5 minutes,
-- doubling with each failure in a row, at most a day).
CREATE FUNCTION acme_name_failed(p_host text, p_error text)
RETURNS void
LANGUAGE sql AS $$
    UPDATE acme_names
       SET failures = failures + 1, last_error = p_error,
           last_error_at = now(),
           next_try_at = now() + make_interval(secs =>
               least(86400, 300 * power(2, least(failures, 9))))
     WHERE host = p_host
$$;

-- What expires within p_days days, with how its renewal goes (for names
-- the provisioner orders: failures in a row, the last error, the next
-- try), and first: names whose first order keeps failing (no certificate
-- yet, not_after null).
CREATE FUNCTION acme_renewal_json(a acme_names) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('renew_after', a.renew_after,
        'failures', a.failures, 'last_error', a.last_error,
        'last_error_at', a.last_error_at, 'next_try_at', a.next_try_at)
$$;

CREATE OR REPLACE FUNCTION certificate_expiring(p_days integer, p_limit integer)
RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(e.entry ORDER BY e.not_after NULLS FIRST), '[]')
      FROM (SELECT certificate_json(c)::jsonb
                   || CASE WHEN a.host IS NULL THEN '{}'::jsonb
                      ELSE jsonb_build_object('renewal', acme_renewal_json(a))
                      END AS entry,
                   c.not_after
              FROM (SELECT * FROM certificates
                     WHERE not_after < now() + make_interval(days => p_days)
                     ORDER BY not_after LIMIT p_limit) c
              LEFT JOIN acme_names a ON a.host = c.host
            UNION ALL
            SELECT jsonb_build_object('host', a.host, 'tenant', a.tenant_id,
                       'source', 'automatic', 'not_after', NULL,
                       'renewal', acme_renewal_json(a)), NULL
              FROM acme_names a
             WHERE a.failures > 0
               AND NOT EXISTS (SELECT 1 FROM certificates c
                                WHERE c.host = a.host)) e
$$;
