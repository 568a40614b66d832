-- Backups of tenant data, their verification, restores, clones and fleet
-- migrations. A backup row is written only by the final transaction of
-- the job that made it, so a backup killed half-way is never listed; its
-- id is that job's id, which also names its place in the store.

ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check
    CHECK (kind IN ('create', 'delete', 'suspend', 'resume', 'seed_admin',
                    'logs', 'certificate', 'backup', 'verify', 'restore',
                    'migrate'));

CREATE TABLE tenant_backups (
    id                 bigint PRIMARY KEY,
    -- no foreign key: a tenant's last backup outlives it
    tenant_id          text NOT NULL,
    blueprint          text NOT NULL,
    blueprint_version  text NOT NULL,
    theme              text NOT NULL,
    mode               text NOT NULL,
    display_name       text NOT NULL DEFAULT '',
    reason             text NOT NULL
                       CHECK (reason IN ('manual', 'scheduled', 'migration')),
    location           text NOT NULL CHECK (length(location) <= 1000),
    db_bytes           bigint NOT NULL DEFAULT 0 CHECK (db_bytes >= 0),
    db_sha256          text CHECK (db_sha256 ~ '^[0-9a-f]{64}$'),
    files_bytes        bigint NOT NULL DEFAULT 0 CHECK (files_bytes >= 0),
    files_sha256       text CHECK (files_sha256 ~ '^[0-9a-f]{64}$'),
    -- {"schema.table": {"rows": n, "sum": "..."}} in the dump's snapshot
    tables             jsonb NOT NULL DEFAULT '{}',
    started_at         timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    verify_status      text NOT NULL DEFAULT 'unverified'
                       CHECK (verify_status IN ('unverified', 'ok', 'failed')),
    verified_at        timestamptz,
    verify_error       text,
    -- set when its tenant is deleted: kept backup_keep_deleted from then
    tenant_gone_at     timestamptz
);
CREATE INDEX tenant_backups_tenant ON tenant_backups (tenant_id, created_at);

CREATE FUNCTION backup_json(b tenant_backups) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object('id', b.id, 'tenant', b.tenant_id,
        'blueprint', b.blueprint, 'blueprint_version', b.blueprint_version,
        'reason', b.reason, 'location', b.location,
        'db_bytes', b.db_bytes, 'db_sha256', b.db_sha256,
        'files_bytes', b.files_bytes, 'files_sha256', b.files_sha256,
        'tables', (SELECT count(*) FROM jsonb_object_keys(b.tables)),
        'rows', (SELECT coalesce(sum((v ->> 'rows')::bigint), 0)
                   FROM jsonb_each(b.tables) AS e(k, v)),
        'started_at', b.started_at, 'created_at', b.created_at,
        'verify', json_build_object('status', b.verify_status,
                                    'at', b.verified_at,
                                    'error', b.verify_error),
        'tenant_gone_at', b.tenant_gone_at)
$$;

-- a tenant as a job's answer shows it, or only its name once it is gone
CREATE FUNCTION tenant_or_name(p_name text) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT tenant_json(t) FROM tenants t WHERE t.id = p_name),
                    json_build_object('name', p_name))
$$;

-- A backup job; the state as the lifecycle functions return it.
CREATE FUNCTION tenant_backup(p_name text, p_verify boolean, p_idem text,
    p_actor text)
RETURNS TABLE (state text, job json, tenant json)
LANGUAGE sql AS $$
    WITH cur AS (SELECT status FROM tenants WHERE id = p_name),
    t AS (SELECT * FROM tenants WHERE id = p_name
             AND status IN ('active', 'suspended')),
    j AS (INSERT INTO jobs (tenant_id, kind, payload, idempotency_key)
          SELECT t.id, 'backup', jsonb_build_object('reason', 'manual',
                 'verify', p_verify), p_idem FROM t RETURNING *),
    a AS (INSERT INTO audit_log (actor, action, tenant_id, detail)
          SELECT p_actor, 'tenant.backup', t.id,
                 jsonb_build_object('verify', p_verify) FROM t)
    SELECT (SELECT status FROM cur), (SELECT job_json(j) FROM j),
           (SELECT tenant_json(t) FROM t)
$$;

CREATE FUNCTION tenant_backups_json(p_name text, p_limit integer)
RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(backup_json(b) ORDER BY b.created_at DESC), '[]')
      FROM (SELECT * FROM tenant_backups WHERE tenant_id = p_name
             ORDER BY created_at DESC LIMIT p_limit) b
$$;

-- Verify, restore: state is 'backup' when there is no such backup, else
-- the reason nothing was made (NULL when a job was).
CREATE FUNCTION backup_verify(p_id bigint, p_idem text, p_actor text)
RETURNS TABLE (state text, job json, tenant json)
LANGUAGE plpgsql AS $$
DECLARE
    b  tenant_backups;
    j  jobs;
BEGIN
    SELECT * INTO b FROM tenant_backups WHERE id = p_id;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'backup'::text, NULL::json, NULL::json;
        RETURN;
    END IF;
    INSERT INTO jobs (tenant_id, kind, payload, idempotency_key)
    VALUES (b.tenant_id, 'verify', jsonb_build_object('backup', b.id), p_idem)
    RETURNING * INTO j;
    INSERT INTO audit_log (actor, action, tenant_id, detail)
    VALUES (p_actor, 'backup.verify', b.tenant_id,
            jsonb_build_object('backup', b.id));
    RETURN QUERY SELECT NULL::text, job_json(j), tenant_or_name(b.tenant_id);
END
$$;

CREATE FUNCTION backup_restore(p_id bigint, p_idem text, p_actor text)
RETURNS TABLE (state text, job json, tenant json)
LANGUAGE plpgsql AS $$
DECLARE
    b  tenant_backups;
    t  tenants;
    j  jobs;
BEGIN
    SELECT * INTO b FROM tenant_backups WHERE id = p_id;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'backup'::text, NULL::json, NULL::json;
        RETURN;
    END IF;
    SELECT * INTO t FROM tenants WHERE id = b.tenant_id;
    IF NOT FOUND OR b.tenant_gone_at IS NOT NULL THEN
        RETURN QUERY SELECT 'the tenant of this backup was deleted; clone '
            'the backup into a new tenant instead'::text, NULL::json,
            NULL::json;
        RETURN;
    END IF;
    IF t.status NOT IN ('active', 'suspended') THEN
        RETURN QUERY SELECT 'the tenant is ' || t.status || '; a restore '
            'needs it active or suspended', NULL::json, NULL::json;
        RETURN;
    END IF;
    IF b.verify_status = 'failed' THEN
        RETURN QUERY SELECT 'this backup failed verification ('
            || coalesce(b.verify_error, 'no detail') || '); pick another',
            NULL::json, NULL::json;
        RETURN;
    END IF;
    IF b.blueprint <> t.blueprint THEN
        RETURN QUERY SELECT 'this backup is of blueprint ' || b.blueprint
            || ', the tenant now runs ' || t.blueprint, NULL::json,
            NULL::json;
        RETURN;
    END IF;
    INSERT INTO jobs (tenant_id, kind, payload, idempotency_key)
    VALUES (t.id, 'restore', jsonb_build_object('backup', b.id), p_idem)
    RETURNING * INTO j;
    INSERT INTO audit_log (actor, action, tenant_id, detail)
    VALUES (p_actor, 'backup.restore', t.id,
            jsonb_build_object('backup', b.id));
    RETURN QUERY SELECT NULL::text, job_json(j), tenant_json(t);
END
$$;

-- A new tenant made from a backup: the create job restores the backup's
-- database and files instead of running the blueprint's setup.
CREATE FUNCTION backup_clone(p_id bigint, p_name text, p_display_name text,
    p_idem text, p_actor text)
RETURNS TABLE (state text, job json, tenant json)
LANGUAGE plpgsql AS $$
DECLARE
    b  tenant_backups;
    t  tenants;
    j  jobs;
BEGIN
    SELECT * INTO b FROM tenant_backups WHERE id = p_id;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'backup'::text, NULL::json, NULL::json;
        RETURN;
    END IF;
    IF b.verify_status = 'failed' THEN
        RETURN QUERY SELECT 'this backup failed verification ('
            || coalesce(b.verify_error, 'no detail') || '); pick another',
            NULL::json, NULL::json;
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM blueprints WHERE name = b.blueprint) THEN
        RETURN QUERY SELECT 'blueprint ' || b.blueprint || ' of this backup '
            'is no longer loaded', NULL::json, NULL::json;
        RETURN;
    END IF;
    INSERT INTO tenants (id, display_name, blueprint, theme, mode, status,
                         managed)
    VALUES (p_name, coalesce(p_display_name, b.display_name), b.blueprint,
            b.theme, b.mode, 'provisioning', true)
    RETURNING * INTO t;
    INSERT INTO jobs (tenant_id, kind, payload, idempotency_key)
    VALUES (t.id, 'create', jsonb_build_object('blueprint', t.blueprint,
            'theme', t.theme, 'mode', t.mode, 'from_backup', b.id), p_idem)
    RETURNING * INTO j;
    INSERT INTO audit_log (actor, action, tenant_id, detail)
    VALUES (p_actor, 'tenant.clone', t.id, jsonb_build_object(
            'backup', b.id, 'from', b.tenant_id));
    RETURN QUERY SELECT NULL::text, job_json(j), tenant_json(t);
END
$$;

-- Tenants due a scheduled backup: none for p_interval seconds, less a
-- share of p_jitter fixed per tenant, so a fleet made at once is not
-- backed up at once ever after. At most p_max are queued per call.
CREATE FUNCTION backup_schedule(p_interval integer, p_jitter integer,
    p_max integer)
RETURNS integer
LANGUAGE sql AS $$
    WITH due AS (
        SELECT t.id FROM tenants t
         WHERE t.managed AND t.status IN ('active', 'suspended')
           AND t.id NOT LIKE 'rt-%'
           AND coalesce((SELECT max(b.created_at) FROM tenant_backups b
                          WHERE b.tenant_id = t.id
                            AND b.tenant_gone_at IS NULL), '-infinity')
               < now() - make_interval(secs => p_interval
                   - abs(hashtext(t.id)) % greatest(p_jitter, 1))
           AND NOT EXISTS (SELECT 1 FROM jobs j
                            WHERE j.tenant_id = t.id AND j.kind = 'backup'
                              AND j.status IN ('queued', 'running'))
         ORDER BY t.id LIMIT p_max),
    j AS (INSERT INTO jobs (tenant_id, kind, payload)
          SELECT id, 'backup', '{"reason": "scheduled", "verify": true}'
            FROM due RETURNING 1)
    SELECT count(*)::integer FROM j
$$;

-- --- fleet migrations ------------------------------------------------------

-- One blueprint's migration step run over all its tenants, a wave at a
-- time. A wave is queued when the one before has finished; more than
-- max_failures tenants failed (each restored to its backup, so none is
-- half-migrated) halts it, and a resume retries them.
CREATE TABLE fleet_migrations (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    blueprint     text NOT NULL,
    wave_size     integer NOT NULL CHECK (wave_size BETWEEN 1 AND 1000),
    max_failures  integer NOT NULL CHECK (max_failures >= 0),
    status        text NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'halted', 'done')),
    wave          integer NOT NULL DEFAULT 0,
    actor         text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE UNIQUE INDEX fleet_one_open ON fleet_migrations (blueprint)
    WHERE status <> 'done';

-- exactly once per tenant: the primary key, and the job's completion
-- writes the outcome in its own transaction (fleet_job_done)
CREATE TABLE fleet_tenants (
    migration_id  bigint NOT NULL REFERENCES fleet_migrations (id)
                  ON DELETE CASCADE,
    tenant_id     text NOT NULL,
    position      integer NOT NULL,
    wave          integer,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'queued', 'migrated',
                                    'rolled_back', 'failed', 'skipped')),
    job_id        bigint,
    backup_id     bigint,
    tries         integer NOT NULL DEFAULT 0,
    error         text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, tenant_id)
);
CREATE INDEX fleet_tenants_next ON fleet_tenants (migration_id, status,
                                                  position);

CREATE FUNCTION fleet_json(m fleet_migrations) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', m.id, 'blueprint', m.blueprint,
        'wave_size', m.wave_size, 'max_failures', m.max_failures,
        'status', m.status, 'wave', m.wave, 'actor', m.actor,
        'created_at', m.created_at, 'updated_at', m.updated_at,
        'finished_at', m.finished_at,
        'tenants', (SELECT coalesce(json_object_agg(status, n), '{}')
                      FROM (SELECT status, count(*) AS n FROM fleet_tenants
                             WHERE migration_id = m.id GROUP BY status) s))
$$;

-- Queues the next wave when the current one is over, or halts or ends the
-- migration. Called with the migration's row locked by nobody else.
CREATE FUNCTION fleet_advance(p_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    m       fleet_migrations;
    failed  integer;
    f       record;
    j       jobs;
    n       integer := 0;
BEGIN
    SELECT * INTO m FROM fleet_migrations WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR m.status <> 'running' THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM fleet_tenants
                WHERE migration_id = p_id AND status = 'queued') THEN
        RETURN;
    END IF;
    SELECT count(*) INTO failed FROM fleet_tenants
     WHERE migration_id = p_id AND status IN ('rolled_back', 'failed');
    IF failed > m.max_failures THEN
        UPDATE fleet_migrations SET status = 'halted', updated_at = now()
         WHERE id = p_id;
        RETURN;
    END IF;

    FOR f IN SELECT ft.tenant_id, t.id AS live, t.status AS tstatus
               FROM fleet_tenants ft
               LEFT JOIN tenants t ON t.id = ft.tenant_id
              WHERE ft.migration_id = p_id AND ft.status = 'pending'
              ORDER BY ft.position LIMIT m.wave_size
    LOOP
        IF f.live IS NULL OR f.tstatus NOT IN ('active', 'suspended') THEN
            UPDATE fleet_tenants SET status = 'skipped', wave = m.wave + 1,
                   error = CASE WHEN f.live IS NULL THEN 'deleted'
                           ELSE 'the tenant is ' || f.tstatus END,
                   updated_at = now()
             WHERE migration_id = p_id AND tenant_id = f.tenant_id;
            CONTINUE;
        END IF;
        INSERT INTO jobs (tenant_id, kind, payload, max_attempts)
        VALUES (f.tenant_id, 'migrate',
                jsonb_build_object('migration', p_id), 3)
        RETURNING * INTO j;
        UPDATE fleet_tenants SET status = 'queued', wave = m.wave + 1,
               job_id = j.id, tries = tries + 1, error = NULL,
               updated_at = now()
         WHERE migration_id = p_id AND tenant_id = f.tenant_id;
        n := n + 1;
    END LOOP;

    IF n > 0 THEN
        UPDATE fleet_migrations SET wave = wave + 1, updated_at = now()
         WHERE id = p_id;
    ELSIF EXISTS (SELECT 1 FROM fleet_tenants
                   WHERE migration_id = p_id AND status = 'pending') THEN
        -- a wave of skipped tenants only: on to the next
        UPDATE fleet_migrations SET wave = wave + 1, updated_at = now()
         WHERE id = p_id;
        PERFORM fleet_advance(p_id);
    ELSE
        UPDATE fleet_migrations SET status = 'done', updated_at = now(),
               finished_at = now()
         WHERE id = p_id;
    END IF;
END
$$;

-- A migrate job's end, in the transaction that ends it: its outcome on
-- the tenant's row, then the next wave if this one is over.
CREATE FUNCTION fleet_job_done() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    mid  bigint := (NEW.payload ->> 'migration')::bigint;
BEGIN
    UPDATE fleet_tenants
       SET status = CASE WHEN NEW.status = 'failed' THEN 'failed'
                         ELSE coalesce(NEW.result ->> 'outcome', 'migrated')
                    END,
           error = CASE WHEN NEW.status = 'failed' THEN NEW.error
                        ELSE NEW.result ->> 'error' END,
           backup_id = coalesce((NEW.result ->> 'backup')::bigint, backup_id),
           updated_at = now()
     WHERE migration_id = mid AND tenant_id = NEW.tenant_id
       AND job_id = NEW.id AND status = 'queued';
    IF FOUND THEN
        PERFORM fleet_advance(mid);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER fleet_job_done AFTER UPDATE OF status ON jobs
    FOR EACH ROW
    WHEN (NEW.kind = 'migrate' AND NEW.status IN ('done', 'failed')
          AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION fleet_job_done();

-- state: what is wrong (NULL: started); migration: the new one
CREATE FUNCTION fleet_start(p_blueprint text, p_wave integer,
    p_max_failures integer, p_actor text)
RETURNS TABLE (state text, migration json)
LANGUAGE plpgsql AS $$
DECLARE
    bp  blueprints;
    m   fleet_migrations;
BEGIN
    SELECT * INTO bp FROM blueprints WHERE name = p_blueprint
       AND coalesce(definition ->> 'internal', 'false') <> 'true';
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'blueprint|no blueprint "' || p_blueprint
            || '"; valid: ' || coalesce((SELECT string_agg(name, ', '
                ORDER BY name) FROM blueprints WHERE coalesce(definition
                ->> 'internal', 'false') <> 'true'), 'none'), NULL::json;
        RETURN;
    END IF;
    IF bp.definition -> 'migrate' IS NULL THEN
        RETURN QUERY SELECT 'blueprint|blueprint ' || bp.name || ' has no '
            'migrate step; valid: ' || coalesce((SELECT string_agg(name, ', '
                ORDER BY name) FROM blueprints WHERE definition -> 'migrate'
                IS NOT NULL), 'none'), NULL::json;
        RETURN;
    END IF;
    INSERT INTO fleet_migrations (blueprint, wave_size, max_failures, actor)
    VALUES (p_blueprint, p_wave, p_max_failures, p_actor)
    RETURNING * INTO m;
    INSERT INTO fleet_tenants (migration_id, tenant_id, position)
    SELECT m.id, t.id, row_number() OVER (ORDER BY t.id COLLATE "C")
      FROM tenants t
     WHERE t.blueprint = p_blueprint AND t.managed
       AND t.status IN ('active', 'suspended');
    INSERT INTO audit_log (actor, action, detail)
    VALUES (p_actor, 'fleet.migrate', jsonb_build_object('migration', m.id,
            'blueprint', p_blueprint, 'wave_size', p_wave,
            'max_failures', p_max_failures));
    PERFORM fleet_advance(m.id);
    SELECT * INTO m FROM fleet_migrations WHERE id = m.id;
    RETURN QUERY SELECT NULL::text, fleet_json(m);
END
$$;

-- a halted migration goes on: its failed tenants are tried again
CREATE FUNCTION fleet_resume(p_id bigint, p_actor text)
RETURNS TABLE (state text, migration json)
LANGUAGE plpgsql AS $$
DECLARE
    m  fleet_migrations;
BEGIN
    SELECT * INTO m FROM fleet_migrations WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'migration'::text, NULL::json;
        RETURN;
    END IF;
    IF m.status <> 'halted' THEN
        RETURN QUERY SELECT 'the migration is ' || m.status
            || '; only a halted one can be resumed', fleet_json(m);
        RETURN;
    END IF;
    UPDATE fleet_tenants SET status = 'pending', updated_at = now()
     WHERE migration_id = p_id AND status IN ('rolled_back', 'failed');
    UPDATE fleet_migrations SET status = 'running', updated_at = now()
     WHERE id = p_id;
    INSERT INTO audit_log (actor, action, detail)
    VALUES (p_actor, 'fleet.resume', jsonb_build_object('migration', p_id));
    PERFORM fleet_advance(p_id);
    SELECT * INTO m FROM fleet_migrations WHERE id = p_id;
    RETURN QUERY SELECT NULL::text, fleet_json(m);
END
$$;

-- one migration with its tenants (those in p_status, or all)
CREATE FUNCTION fleet_detail(p_id bigint, p_status text) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT (fleet_json(m)::jsonb || jsonb_build_object('tenant_list',
        (SELECT coalesce(jsonb_agg(jsonb_build_object('tenant', f.tenant_id,
                'position', f.position, 'wave', f.wave, 'status', f.status,
                'tries', f.tries, 'job', f.job_id, 'backup', f.backup_id,
                'error', f.error, 'updated_at', f.updated_at)
                ORDER BY f.position), '[]')
           FROM fleet_tenants f
          WHERE f.migration_id = m.id
            AND (p_status IS NULL OR f.status = p_status))))::json
      FROM fleet_migrations m WHERE m.id = p_id
$$;

-- Backups retention no longer keeps: per live tenant all of the last 24
-- hours, the newest of each of its p_daily most recent days and of its
-- p_weekly most recent weeks, and always its newest; a deleted tenant's
-- newest until p_gone seconds after its deletion. Backups a job or an
-- unfinished fleet migration still uses stay.
CREATE FUNCTION backup_expired(p_daily integer, p_weekly integer,
    p_gone integer)
RETURNS TABLE (id bigint, location text)
LANGUAGE sql STABLE AS $$
    WITH b AS (
        SELECT b.id, b.location, b.tenant_gone_at, b.created_at,
               row_number() OVER (PARTITION BY b.tenant_id
                                  ORDER BY b.created_at DESC) AS newest,
               row_number() OVER (PARTITION BY b.tenant_id,
                                  date_trunc('day', b.created_at)
                                  ORDER BY b.created_at DESC) AS in_day,
               dense_rank() OVER (PARTITION BY b.tenant_id
                                  ORDER BY date_trunc('day', b.created_at)
                                  DESC) AS day,
               row_number() OVER (PARTITION BY b.tenant_id,
                                  date_trunc('week', b.created_at)
                                  ORDER BY b.created_at DESC) AS in_week,
               dense_rank() OVER (PARTITION BY b.tenant_id
                                  ORDER BY date_trunc('week', b.created_at)
                                  DESC) AS week
          FROM tenant_backups b)
    SELECT b.id, b.location FROM b
     WHERE CASE WHEN b.tenant_gone_at IS NOT NULL
                THEN b.newest > 1
                     OR b.tenant_gone_at < now() - make_interval(secs => p_gone)
                ELSE b.newest > 1
                     AND b.created_at < now() - interval '1 day'
                     AND NOT (b.in_day = 1 AND b.day <= p_daily)
                     AND NOT (b.in_week = 1 AND b.week <= p_weekly)
           END
       AND NOT EXISTS (SELECT 1 FROM jobs j
                        WHERE j.status IN ('queued', 'running')
                          AND (j.payload ->> 'backup')::bigint = b.id)
       AND NOT EXISTS (SELECT 1 FROM fleet_tenants f
                         JOIN fleet_migrations m ON m.id = f.migration_id
                        WHERE f.backup_id = b.id AND m.status <> 'done')
$$;
