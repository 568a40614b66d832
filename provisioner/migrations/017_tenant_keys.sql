-- API keys bound to one tenant: they act on that tenant only (its domains,
-- certificates, seed-admin, logs, backups, its jobs), and go with it. A
-- key with no tenant is the platform's, as before.
ALTER TABLE api_keys ADD COLUMN tenant_id text
    REFERENCES tenants (id) ON DELETE CASCADE;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id) WHERE tenant_id IS NOT NULL;
