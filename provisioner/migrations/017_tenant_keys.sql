-- API keys bound to one tenant: they act on that tenant only (its domains,
-- certificates, seed-admin, logs, backups, its jobs), and go with it. A
-- key with no tenant is the platform's, as before.
ALTER TABLE api_keys ADD COLUMN tenant_id text
    REFERENCES tenants (id) ON DELETE CASCADE;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id) WHERE tenant_id IS NOT NULL;

-- A tenant's key made by the admin API (the CLI writes the row itself):
-- state 'tenant' when there is no such tenant; the key's row as JSON.
CREATE FUNCTION tenant_key_create(p_tenant text, p_id text, p_name text,
    p_hash bytea, p_actor text)
RETURNS TABLE (state text, key json)
LANGUAGE plpgsql AS $$
DECLARE
    k  api_keys;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant
                      AND status <> 'deleting') THEN
        RETURN QUERY SELECT 'tenant'::text, NULL::json;
        RETURN;
    END IF;
    INSERT INTO api_keys (id, name, key_hash, tenant_id)
    VALUES (p_id, p_name, p_hash, p_tenant) RETURNING * INTO k;
    INSERT INTO audit_log (actor, action, tenant_id, detail)
    VALUES (p_actor, 'key.create', p_tenant,
            jsonb_build_object('key', k.id, 'name', k.name));
    RETURN QUERY SELECT NULL::text, json_build_object('id', k.id,
        'name', k.name, 'tenant', k.tenant_id, 'created_at', k.created_at);
END
$$;

CREATE FUNCTION tenant_keys_json(p_tenant text) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant)
           THEN NULL ELSE
        (SELECT coalesce(json_agg(json_build_object('id', id, 'name', name,
                'created_at', created_at, 'revoked_at', revoked_at)
                ORDER BY created_at), '[]')
           FROM api_keys WHERE tenant_id = p_tenant) END
$$;

-- revoked: the key's id; NULL when the tenant has no such live key
CREATE FUNCTION tenant_key_revoke(p_tenant text, p_id text, p_actor text)
RETURNS text
LANGUAGE sql AS $$
    WITH k AS (UPDATE api_keys SET revoked_at = now()
                WHERE id = p_id AND tenant_id = p_tenant
                  AND revoked_at IS NULL RETURNING id),
    a AS (INSERT INTO audit_log (actor, action, tenant_id, detail)
          SELECT p_actor, 'key.revoke', p_tenant,
                 jsonb_build_object('key', k.id) FROM k)
    SELECT id FROM k
$$;
