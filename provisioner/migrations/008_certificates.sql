-- TLS certificates the edges serve, by the host name they answer for: a
-- tenant's custom domain, or a platform name (tenant_id NULL), a wildcard
-- written "*.parent". The chain is DER, leaf first; the private key is DER
-- sealed with AES-256-GCM under the certificate key the edges and the
-- provisioner read from a 0600 file (associated data "ngx_tenant/cert/1"
-- NUL host: a key moved to another host does not open). Every write
-- notifies the edges on their tenant_changed channel: "cert:<host>", or
-- "cert:*" (a colon is in no tenant name, so the payloads cannot collide).
CREATE TABLE certificates (
    host        text PRIMARY KEY
                CHECK (length(host) <= 253
                       AND host ~ '^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
    tenant_id   text REFERENCES tenants (id) ON DELETE CASCADE,
    chain       bytea NOT NULL CHECK (length(chain) BETWEEN 64 AND 65536),
    key_nonce   bytea NOT NULL CHECK (length(key_nonce) = 12),
    key_sealed  bytea NOT NULL CHECK (length(key_sealed) BETWEEN 32 AND 8192),
    names       text NOT NULL,
    issuer      text NOT NULL,
    key_type    text NOT NULL,
    not_before  timestamptz NOT NULL,
    not_after   timestamptz NOT NULL CHECK (not_after > not_before),
    source      text NOT NULL CHECK (source IN ('uploaded', 'wildcard', 'automatic')),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX certificates_not_after ON certificates (not_after);
CREATE INDEX certificates_tenant ON certificates (tenant_id);

CREATE FUNCTION notify_certificate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('tenant_changed', 'cert:' || OLD.host);
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.host <> OLD.host) THEN
        PERFORM pg_notify('tenant_changed', 'cert:' || NEW.host);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER certificates_changed AFTER INSERT OR UPDATE OR DELETE ON certificates
    FOR EACH ROW EXECUTE FUNCTION notify_certificate();
-- "*": every edge drops what it holds and loads the table again
CREATE FUNCTION notify_certificates_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenant_changed', 'cert:*');
    RETURN NULL;
END $$;

CREATE TRIGGER certificates_truncated AFTER TRUNCATE ON certificates
    FOR EACH STATEMENT EXECUTE FUNCTION notify_certificates_truncated();

-- a custom domain that goes takes its certificate with it
CREATE FUNCTION drop_domain_certificate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM certificates WHERE host = OLD.host AND tenant_id = OLD.tenant_id;
    RETURN NULL;
END $$;

CREATE TRIGGER tenant_hosts_certificate AFTER DELETE ON tenant_hosts
    FOR EACH ROW EXECUTE FUNCTION drop_domain_certificate();

-- HTTPS-only tenants: the edge sends Strict-Transport-Security on their
-- HTTPS answers
ALTER TABLE tenants ADD COLUMN hsts boolean NOT NULL DEFAULT false;

CREATE FUNCTION certificate_json(c certificates) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object('host', c.host, 'tenant', c.tenant_id,
        'names', string_to_array(c.names, ','), 'issuer', c.issuer,
        'key_type', c.key_type, 'not_before', c.not_before,
        'not_after', c.not_after, 'source', c.source,
        'updated_at', c.updated_at)
$$;

-- An uploaded certificate for a tenant's custom domain (the caller has
-- checked it). state: the tenant's status, NULL if there is none; certificate
-- NULL when the host is not a custom domain of that tenant.
CREATE FUNCTION certificate_put(p_tenant text, p_host text, p_chain bytea,
    p_nonce bytea, p_sealed bytea, p_names text, p_issuer text,
    p_key_type text, p_not_before timestamptz, p_not_after timestamptz,
    p_actor text)
RETURNS TABLE (state text, certificate json)
LANGUAGE sql AS $$
    WITH h AS (SELECT host FROM tenant_hosts
                WHERE host = p_host AND tenant_id = p_tenant),
    c AS (INSERT INTO certificates (host, tenant_id, chain, key_nonce,
                                    key_sealed, names, issuer, key_type,
                                    not_before, not_after, source)
          SELECT h.host, p_tenant, p_chain, p_nonce, p_sealed, p_names,
                 p_issuer, p_key_type, p_not_before, p_not_after, 'uploaded'
            FROM h
          ON CONFLICT (host) DO UPDATE
             SET tenant_id = EXCLUDED.tenant_id, chain = EXCLUDED.chain,
                 key_nonce = EXCLUDED.key_nonce,
                 key_sealed = EXCLUDED.key_sealed, names = EXCLUDED.names,
                 issuer = EXCLUDED.issuer, key_type = EXCLUDED.key_type,
                 not_before = EXCLUDED.not_before,
                 not_after = EXCLUDED.not_after, source = EXCLUDED.source,
                 updated_at = now()
          RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, tenant_id, detail)
          SELECT p_actor, 'certificate.put', c.tenant_id,
                 jsonb_build_object('host', c.host, 'not_after', c.not_after,
                                    'issuer', c.issuer) FROM c)
    SELECT (SELECT status FROM tenants WHERE id = p_tenant),
           (SELECT certificate_json(c) FROM c)
$$;

CREATE FUNCTION certificate_remove(p_tenant text, p_host text, p_actor text)
RETURNS TABLE (state text, certificate json)
LANGUAGE sql AS $$
    WITH c AS (DELETE FROM certificates WHERE host = p_host
                  AND tenant_id = p_tenant RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, tenant_id, detail)
          SELECT p_actor, 'certificate.remove', c.tenant_id,
                 jsonb_build_object('host', c.host) FROM c)
    SELECT (SELECT status FROM tenants WHERE id = p_tenant),
           (SELECT certificate_json(c) FROM c)
$$;

-- what expires within p_days days (all of them for a large p_days),
-- soonest first
CREATE FUNCTION certificate_expiring(p_days integer, p_limit integer)
RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(certificate_json(c) ORDER BY c.not_after), '[]')
      FROM (SELECT * FROM certificates
             WHERE not_after < now() + make_interval(days => p_days)
             ORDER BY not_after LIMIT p_limit) c
$$;

-- A certificate of the platform's own (tenant_id NULL): a wildcard such as
-- "*.shop.example.com" for every tenant host under it, or any platform name.
CREATE FUNCTION certificate_put_platform(p_host text, p_chain bytea,
    p_nonce bytea, p_sealed bytea, p_names text, p_issuer text,
    p_key_type text, p_not_before timestamptz, p_not_after timestamptz,
    p_source text, p_actor text)
RETURNS json
LANGUAGE sql AS $$
    WITH c AS (INSERT INTO certificates (host, tenant_id, chain, key_nonce,
                                         key_sealed, names, issuer, key_type,
                                         not_before, not_after, source)
               VALUES (p_host, NULL, p_chain, p_nonce, p_sealed, p_names,
                       p_issuer, p_key_type, p_not_before, p_not_after,
                       p_source)
               ON CONFLICT (host) DO UPDATE
                  SET tenant_id = NULL, chain = EXCLUDED.chain,
                      key_nonce = EXCLUDED.key_nonce,
                      key_sealed = EXCLUDED.key_sealed,
                      names = EXCLUDED.names, issuer = EXCLUDED.issuer,
                      key_type = EXCLUDED.key_type,
                      not_before = EXCLUDED.not_before,
                      not_after = EXCLUDED.not_after,
                      source = EXCLUDED.source, updated_at = now()
               RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, tenant_id, detail)
          SELECT p_actor, 'certificate.put', NULL,
                 jsonb_build_object('host', c.host, 'not_after', c.not_after,
                                    'issuer', c.issuer) FROM c)
    SELECT certificate_json(c) FROM c
$$;
