#ifndef PROV_TASK_H
#define PROV_TASK_H

/*
 * What the job executors share (tasks.c, backup.c, fleet.c): how a job
 * ends, and the step that records its progress.
 */

#include "jobs.h"
#include "prov.h"

#include <stdio.h>

enum outcome { DONE, FAILED, PERMANENT, RELEASE, LOST, DEFERRED };

#define ERRLEN 512

/* runs a step, records it, and stops on failure, shutdown or a lost claim */
#define STEP(name, call)  STEP_FOR(name, 0, call)

/*
 * The same, the lease renewed for what the next step may take (seconds;
 * 0: the configured lease) in the step's own record: one round trip
 * fewer than extending it apart, and a burst of creates waits on each.
 */
#define STEP_FOR(name, seconds, call)                                        \
    do {                                                                     \
        if (*p->stop) {                                                       \
            return RELEASE;                                                  \
        }                                                                    \
        if ((call) != 0) {                                                   \
            return *p->stop ? RELEASE : FAILED;                              \
        }                                                                    \
        failpoint(j->kind, name);                                            \
        switch (job_step(p, j, name, seconds)) {                             \
        case 0:                                                              \
            break;                                                           \
        case PROV_NONE:                                                      \
            return LOST;                                                     \
        default:                                                             \
            snprintf(err, ERRLEN, "registry: cannot record step %s", name);  \
            return FAILED;                                                   \
        }                                                                    \
    } while (0)

/* the job's completion, in the transaction job_begin opened */
enum outcome task_finish(struct prov *p, struct job *j, json_t *result,
                         char *err);
/* the same, the final transaction's writes and the job's sent together */
enum outcome task_finish_batch(struct prov *p, struct job *j,
                               struct db_batch *b, json_t *result,
                               char *err);
/* the lease held through a step that may outlast it */
int          task_extend(struct prov *p, struct job *j, int seconds,
                         char *err);
json_t      *task_skipped(const char *why);

struct tenant;

/* an active tenant's services started again and healthy (after its data
 * changed); a suspended one's left stopped */
int          task_start_active(struct prov *p, struct tenant *t, char *err);

/* backup.c */
enum outcome backup_do_backup(struct prov *p, struct job *j,
                              struct tenant *t, char *err);
enum outcome backup_do_verify(struct prov *p, struct job *j, char *err);
enum outcome backup_do_restore(struct prov *p, struct job *j,
                               struct tenant *t, char *err);
/* a clone's create: the backup's database and files, not the setup */
int          backup_clone_into(struct prov *p, struct job *j,
                               struct tenant *t, char *err);

/* a migration's backup: made and recorded (id the job's) at once */
int          backup_take(struct prov *p, struct job *j, struct tenant *t,
                         char *err);
/* the data of that backup put back (its services stopped by the caller);
 * tag tells one put-back of the job from another */
int          backup_put_back(struct prov *p, struct job *j, struct tenant *t,
                             const char *tag, char *err);
/* run under the tenant's data lock (one backup, restore or migration
 * of a tenant at a time); deferred while another job holds it */
enum outcome backup_locked_run(struct prov *p, struct job *j,
                               struct tenant *t, char *err,
                               enum outcome (*run)(struct prov *,
                                                   struct job *,
                                                   struct tenant *, char *));

/* webhook.c: a sign-up's decision posted, signed, to the tenant's stack */
enum outcome webhook_do_send(struct prov *p, struct job *j, struct tenant *t,
                             char *err);

/* fleet.c */
enum outcome fleet_do_migrate(struct prov *p, struct job *j,
                              struct tenant *t, char *err);

#endif
