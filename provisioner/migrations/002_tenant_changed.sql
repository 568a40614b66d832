-- Every change to the routing tables notifies nginx, whoever makes it: the
-- API, the provisioner, or an operator in psql. NOTIFY is transactional, so
-- nginx hears of a change exactly when it becomes visible.
-- Payload: "<tenant id>" or "<tenant id> <host>" for tenant_hosts, so a
-- cached "unknown host" is dropped when that host is given to a tenant.

CREATE FUNCTION notify_tenant_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rec record;
BEGIN
    IF TG_OP = 'DELETE' THEN
        rec := OLD;
    ELSE
        rec := NEW;
    END IF;

    IF TG_TABLE_NAME = 'tenants' THEN
        PERFORM pg_notify('tenant_changed', rec.id);
        IF TG_OP = 'UPDATE' AND OLD.id <> NEW.id THEN
            PERFORM pg_notify('tenant_changed', OLD.id);
        END IF;
    ELSIF TG_TABLE_NAME = 'tenant_hosts' THEN
        PERFORM pg_notify('tenant_changed', rec.tenant_id || ' ' || rec.host);
        IF TG_OP = 'UPDATE' THEN
            PERFORM pg_notify('tenant_changed', OLD.tenant_id || ' ' || OLD.host);
        END IF;
    ELSE
        PERFORM pg_notify('tenant_changed', rec.tenant_id);
        IF TG_OP = 'UPDATE' AND OLD.tenant_id <> NEW.tenant_id THEN
            PERFORM pg_notify('tenant_changed', OLD.tenant_id);
        END IF;
    END IF;

    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_changed AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION notify_tenant_changed();
CREATE TRIGGER tenant_hosts_changed AFTER INSERT OR UPDATE OR DELETE ON tenant_hosts
    FOR EACH ROW EXECUTE FUNCTION notify_tenant_changed();
CREATE TRIGGER tenant_endpoints_changed AFTER INSERT OR UPDATE OR DELETE ON tenant_endpoints
    FOR EACH ROW EXECUTE FUNCTION notify_tenant_changed();

-- TRUNCATE has no rows to name: tell nginx to drop everything ("*").
CREATE FUNCTION notify_tenant_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenant_changed', '*');
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_truncated AFTER TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION notify_tenant_truncated();
CREATE TRIGGER tenant_hosts_truncated AFTER TRUNCATE ON tenant_hosts
    FOR EACH STATEMENT EXECUTE FUNCTION notify_tenant_truncated();
CREATE TRIGGER tenant_endpoints_truncated AFTER TRUNCATE ON tenant_endpoints
    FOR EACH STATEMENT EXECUTE FUNCTION notify_tenant_truncated();
