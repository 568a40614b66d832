-- What the admin API needs from the registry.

-- Blueprints the provisioner has loaded (it syncs this table from
-- blueprints/ on start and SIGHUP), so the API can refuse an unknown
-- blueprint or theme without reading the provisioner's files.
CREATE TABLE blueprints (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    themes      text[] NOT NULL DEFAULT '{default}',
    modes       text[] NOT NULL DEFAULT '{dedicated}',
    definition  jsonb NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Queued jobs wake the provisioners; finished jobs wake whoever waits on
-- them (the API's ?wait, the CLI's --wait). Payload: the job id.
CREATE FUNCTION notify_jobs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NEW.status = 'queued' THEN
        PERFORM pg_notify('jobs', NEW.id::text);
    ELSIF TG_OP = 'UPDATE' AND NEW.status IS DISTINCT FROM OLD.status THEN
        IF NEW.status IN ('done', 'failed') THEN
            PERFORM pg_notify('job_done', NEW.id::text);
        ELSIF NEW.status = 'queued' THEN
            PERFORM pg_notify('jobs', NEW.id::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION notify_jobs();

-- one queued or running job per tenant and kind (logs aside): a retried
-- request cannot start the same work twice
CREATE UNIQUE INDEX jobs_one_pending ON jobs (tenant_id, kind)
    WHERE status IN ('queued', 'running') AND kind <> 'logs';

-- the admin credentials in a create job's result are shown once
ALTER TABLE jobs ADD COLUMN revealed_at timestamptz;
