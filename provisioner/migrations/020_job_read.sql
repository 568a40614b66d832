-- job_read without a row lock unless this read is the one that reveals the
-- admin password. The first version locked the job (FOR UPDATE) on every
-- read: each poll of a job in progress wrote the row's lock and queued
-- behind the provisioner's step updates (and they behind it), and a SQL
-- function's body is planned again on each call. In a burst of 20 creates
-- its 56 calls were the registry's largest cost (48 ms of 130).
--
-- Exactly once still: readers that see a password race for the lock; the
-- winner strips it and returns it, the others read the row again under the
-- lock (read committed: the latest version) and find it gone.

CREATE OR REPLACE FUNCTION job_read(p_id bigint)
RETURNS TABLE (finished boolean, job json, tenant json)
LANGUAGE plpgsql AS $$
DECLARE
    j  jobs;
BEGIN
    SELECT * INTO j FROM jobs WHERE id = p_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    IF j.status = 'done' AND j.result #> '{admin,password}' IS NOT NULL THEN
        SELECT * INTO j FROM jobs WHERE id = p_id FOR UPDATE;
        IF j.result #> '{admin,password}' IS NOT NULL THEN
            UPDATE jobs SET result = result #- '{admin,password}',
                            revealed_at = now()
             WHERE id = p_id;
        END IF;
    END IF;

    RETURN QUERY SELECT j.status IN ('done', 'failed'), job_json(j),
                        (SELECT tenant_json(t) FROM tenants t
                          WHERE t.id = j.tenant_id);
END
$$;
