#define _GNU_SOURCE

/*
 * One tenant's part of a fleet migration: back it up, run its blueprint's
 * migrate step with its services stopped, start them again. A failure
 * puts the backup back, so a tenant is either migrated or as it was,
 * never half-way; the outcome reaches the migration (fleet_job_done, a
 * trigger) in the transaction that ends the job, which queues the next
 * wave. A job resumed after a crash puts its backup back first and
 * migrates again: the step may have stopped anywhere.
 */

#include "task.h"
#include "db.h"
#include "log.h"
#include "tenant.h"

#include <stdlib.h>
#include <string.h>

/* seconds a job's lease is extended to before a backup or a put-back */
#define MIGRATE_LEASE  3600

/* 1 this job's backup is recorded (an earlier attempt made it), 0 not */
static int
backed_up(struct prov *p, struct job *j)
{
    return tenant_db_exists(p->conn, "SELECT 1 FROM tenant_backups"
                            " WHERE id = $1::bigint", j->idstr);
}

/* the migration still wants this job: its tenant's row is queued for it */
static int
wanted(struct prov *p, struct job *j)
{
    const char  *params[3];
    char         mid[24];
    PGresult    *res;
    int          n;

    snprintf(mid, sizeof(mid), "%lld", (long long)
             json_integer_value(json_object_get(j->payload, "migration")));
    params[0] = mid;
    params[1] = j->tenant;
    params[2] = j->idstr;
    res = db_query(p->conn, "read the migration's tenant",
                   "SELECT 1 FROM fleet_tenants WHERE migration_id = $1::bigint"
                   "   AND tenant_id = $2 AND job_id = $3::bigint"
                   "   AND status = 'queued'", 3, params);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    PQclear(res);
    return n;
}

static enum outcome
migrate_locked(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    char         why[ERRLEN];
    int          rc;
    const char  *outcome;
    json_t      *result;

    rc = backed_up(p, j);
    if (rc < 0) {
        snprintf(err, ERRLEN, "registry: cannot look up the backup");
        return FAILED;
    }

    /* its ports and secrets: the step's commands are rendered with them */
    STEP("prepare", tenant_prepare(p, t, err, ERRLEN));
    STEP("stop", tenant_stop_all(p, t, err, ERRLEN));
    /* each step renews the lease to the default: the long ones extend it
     * first (a crashed claimer's job is retaken at once all the same) */
    if (task_extend(p, j, MIGRATE_LEASE, err) != 0) {
        return LOST;
    }
    if (rc == 0) {
        STEP("backup", backup_take(p, j, t, err));
    } else {
        /* an attempt stopped somewhere in the migration: undo it all */
        log_info("job %lld: %s was backed up by an earlier attempt; putting "
                 "that backup back before migrating again", j->id, t->id);
        STEP("put-back", backup_put_back(p, j, t, "a", err));
    }

    if (task_extend(p, j, MIGRATE_LEASE + tenant_migrate_time(t)
                          + tenant_health_time(p, t), err) != 0)
    {
        return LOST;
    }
    rc = tenant_run_migrate(p, t, why, sizeof(why));
    failpoint(j->kind, "migrated");
    if (rc == 0) {
        rc = task_start_active(p, t, why);
    }

    if (rc == 0) {
        outcome = "migrated";
    } else {
        if (*p->stop) {
            return RELEASE;
        }
        log_warn("job %lld: %s: migration failed, putting its backup back: "
                 "%s", j->id, t->id, why);
        STEP("stop-again", tenant_stop_all(p, t, err, ERRLEN));
        if (task_extend(p, j, MIGRATE_LEASE, err) != 0) {
            return LOST;
        }
        STEP("rollback", backup_put_back(p, j, t, "b", err));
        if (task_extend(p, j, tenant_health_time(p, t), err) != 0) {
            return LOST;
        }
        STEP("services", task_start_active(p, t, err));
        outcome = "rolled_back";
    }

    failpoint(j->kind, "finish");

    result = json_pack("{s:s, s:I, s:s?}", "outcome", outcome, "backup",
                       (json_int_t) j->id, "error", rc == 0 ? NULL : why);
    if (job_begin(p) != 0) {
        json_decref(result);
        return FAILED;
    }
    return task_finish(p, j, result, err);
}

enum outcome
fleet_do_migrate(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    int  rc;

    rc = wanted(p, j);
    if (rc <= 0) {
        if (rc < 0 || job_begin(p) != 0) {
            snprintf(err, ERRLEN, "registry: cannot read the migration");
            return FAILED;
        }
        return task_finish(p, j, task_skipped("the migration no longer "
                                              "wants this tenant"), err);
    }

    return backup_locked_run(p, j, t, err, migrate_locked);
}
