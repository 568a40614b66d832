#define _GNU_SOURCE

/* What every job executor ends or extends its job with (task.h). */

#include "task.h"
#include "tenant.h"

#include <stdio.h>
#include <string.h>

json_t *
task_skipped(const char *why)
{
    return json_pack("{s:s}", "skipped", why);
}

enum outcome
task_finish(struct prov *p, struct job *j, json_t *result, char *err)
{
    int rc = job_commit(p, j, result);

    json_decref(result);
    if (rc != 0) {
        snprintf(err, ERRLEN, "registry: cannot finish the job");
        return LOST;
    }
    return DONE;
}

enum outcome
task_finish_batch(struct prov *p, struct job *j, struct db_batch *b,
                  json_t *result, char *err)
{
    int rc = job_commit_batch(p, j, b, result, err, ERRLEN);

    json_decref(result);
    return rc == 0 ? DONE : rc == PROV_NONE ? LOST : FAILED;
}

/* the lease held through a step that may outlast it (migrations, a slow
 * application's health check) */
int
task_extend(struct prov *p, struct job *j, int seconds, char *err)
{
    if (job_extend(p, j, seconds) != 0) {
        snprintf(err, ERRLEN, "registry: cannot extend the job's lease");
        return -1;
    }
    return 0;
}

int
task_start_active(struct prov *p, struct tenant *t, char *err)
{
    if (strcmp(t->status, "active") != 0) {
        return 0;
    }
    if (tenant_prepare(p, t, err, ERRLEN) != 0
        || tenant_start_all(p, t, err, ERRLEN) != 0)
    {
        return -1;
    }
    return tenant_wait_healthy(p, t, err, ERRLEN);
}
