-- Tenant database roles live in the same cluster as the registry: they must
-- not even connect to it. The registry's own role owns the database and
-- keeps its access.
DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC',
                   current_database());
END
$$;
