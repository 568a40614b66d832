-- Custom domains are proven before they route. A tenant's request for a
-- domain is a claim: it holds a token the owner publishes as the TXT record
-- _ngx-tenant.{domain}; the provisioner looks, with backoff, and the first
-- claim whose token it finds becomes the domain's tenant_hosts row (and only
-- then routes and may get a certificate). Claims do not block each other: a
-- tenant cannot take a domain from its owner by asking first. An operator
-- may verify a claim by hand (audited); a platform whose tenants are all
-- trusted turns verification off in the admin API's configuration, and
-- domains are then added as before.
CREATE TABLE domain_claims (
    host             text NOT NULL
                     CHECK (length(host) <= 253
                            AND host ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
    tenant_id        text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role             text NOT NULL DEFAULT 'site' CHECK (role IN ('site', 'admin')),
    token            text NOT NULL DEFAULT ('ngx-tenant-verify=' || gen_random_uuid()),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'verified', 'expired')),
    checks           integer NOT NULL DEFAULT 0,
    check_after      timestamptz NOT NULL DEFAULT now(),
    last_check       text,
    last_checked_at  timestamptz,
    expires_at       timestamptz NOT NULL DEFAULT now() + interval '7 days',
    verified_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, tenant_id)
);
CREATE INDEX domain_claims_due ON domain_claims (check_after) WHERE status = 'pending';

CREATE FUNCTION claim_json(c domain_claims) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object('host', c.host, 'tenant', c.tenant_id,
        'role', c.role, 'status', c.status, 'token', c.token,
        'txt_record', '_ngx-tenant.' || c.host, 'checks', c.checks,
        'last_check', c.last_check, 'last_checked_at', c.last_checked_at,
        'next_check_at', CASE WHEN c.status = 'pending' THEN c.check_after END,
        'expires_at', c.expires_at, 'verified_at', c.verified_at,
        'created_at', c.created_at)
$$;

-- A claim (the API with verification on, the CLI): state as
-- tenant_domain_add's; domain: the claim. A domain already this tenant's is
-- a conflict (tenant_hosts_pkey), another tenant's is a claim like any.
CREATE FUNCTION tenant_domain_claim(p_name text, p_host text, p_role text,
    p_actor text)
RETURNS TABLE (state text, domain json)
LANGUAGE plpgsql AS $$
DECLARE
    c domain_claims;
BEGIN
    state := (SELECT status FROM tenants WHERE id = p_name);
    IF state IS NULL OR state = 'deleting' THEN
        RETURN NEXT;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM tenant_hosts WHERE host = p_host
                  AND tenant_id = p_name) THEN
        RAISE unique_violation USING CONSTRAINT = 'tenant_hosts_pkey',
            MESSAGE = 'the tenant has this domain already';
    END IF;
    -- asking again renews an expired claim, with a new token
    INSERT INTO domain_claims (host, tenant_id, role)
    VALUES (p_host, p_name, p_role)
    ON CONFLICT (host, tenant_id) DO UPDATE
       SET role = EXCLUDED.role,
           token = CASE WHEN domain_claims.status = 'expired'
                        THEN EXCLUDED.token ELSE domain_claims.token END,
           status = 'pending', checks = 0, check_after = now(),
           expires_at = EXCLUDED.expires_at
    RETURNING * INTO c;
    INSERT INTO audit_log (actor, action, tenant_id, detail)
    VALUES (p_actor, 'domain.claim', p_name,
            jsonb_build_object('host', p_host, 'role', p_role));
    domain := claim_json(c);
    RETURN NEXT;
END $$;

-- The claim proven (by the provisioner's look, or an operator's word): the
-- domain becomes the tenant's, unless another tenant's claim won first.
-- Returns the tenant_hosts row as JSON, or NULL when it was taken.
CREATE FUNCTION domain_claim_verified(p_host text, p_tenant text,
    p_how text, p_actor text)
RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    h tenant_hosts;
    c domain_claims;
BEGIN
    SELECT * INTO c FROM domain_claims
     WHERE host = p_host AND tenant_id = p_tenant FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO tenant_hosts (host, tenant_id, role)
    VALUES (p_host, p_tenant, c.role)
    ON CONFLICT (host) DO NOTHING
    RETURNING * INTO h;
    IF h.host IS NULL THEN
        UPDATE domain_claims
           SET last_check = 'the domain was verified by another tenant first',
               last_checked_at = now(), status = 'expired'
         WHERE host = p_host AND tenant_id = p_tenant;
        RETURN NULL;
    END IF;
    UPDATE domain_claims
       SET status = 'verified', verified_at = now(), last_check = p_how,
           last_checked_at = now()
     WHERE host = p_host AND tenant_id = p_tenant;
    INSERT INTO audit_log (actor, action, tenant_id, detail)
    VALUES (p_actor, 'domain.verified', p_tenant,
            jsonb_build_object('host', p_host, 'how', p_how));
    RETURN json_build_object('host', h.host, 'tenant', h.tenant_id,
                             'role', h.role, 'created_at', h.created_at);
END $$;

-- removing a domain removes the tenant's claim on it too
CREATE OR REPLACE FUNCTION tenant_domain_remove(p_name text, p_host text,
    p_actor text)
RETURNS TABLE (state text, domain json)
LANGUAGE sql AS $$
    WITH h AS (DELETE FROM tenant_hosts WHERE host = p_host
                  AND tenant_id = p_name RETURNING *),
    c AS (DELETE FROM domain_claims WHERE host = p_host
             AND tenant_id = p_name RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, tenant_id, detail)
          SELECT p_actor, 'domain.remove', p_name,
                 jsonb_build_object('host', p_host)
           WHERE EXISTS (SELECT 1 FROM h) OR EXISTS (SELECT 1 FROM c))
    SELECT (SELECT status FROM tenants WHERE id = p_name),
           coalesce((SELECT json_build_object('host', h.host, 'tenant',
                            h.tenant_id, 'role', h.role) FROM h),
                    (SELECT json_build_object('host', c.host, 'tenant',
                            c.tenant_id, 'role', c.role, 'status', c.status)
                       FROM c))
$$;

-- the tenant's detail shows its claims beside its domains
CREATE OR REPLACE FUNCTION tenant_detail(p_name text) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT (tenant_json(t)::jsonb || jsonb_build_object(
        'managed', t.managed,
        'hsts', t.hsts,
        'domains', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'host', h.host, 'role', h.role) ORDER BY h.host),
                    '[]') FROM tenant_hosts h WHERE h.tenant_id = t.id),
        'domain_claims', (SELECT coalesce(jsonb_agg(claim_json(c)::jsonb
                            ORDER BY c.host), '[]')
                            FROM domain_claims c
                           WHERE c.tenant_id = t.id AND c.status <> 'verified'),
        'endpoints', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'role', e.role, 'address', e.address,
                        'weight', e.weight) ORDER BY e.id), '[]')
                      FROM tenant_endpoints e WHERE e.tenant_id = t.id),
        'last_job', (SELECT job_json(j) FROM jobs j
                      WHERE j.tenant_id = t.id ORDER BY j.id DESC LIMIT 1)
        ))::json
      FROM tenants t WHERE t.id = p_name
$$;
