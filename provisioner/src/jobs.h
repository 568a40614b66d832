#ifndef PROV_JOBS_H
#define PROV_JOBS_H

#include "db.h"
#include "prov.h"

#include <jansson.h>

struct job {
    long long   id;
    char        idstr[24];
    char        tenant[64];
    char        kind[16];
    json_t     *payload;
    int         attempts;
    int         max_attempts;
};

/* 0 claimed, PROV_NONE nothing to do, -1 error */
int  job_claim(struct prov *p, struct job *j);
void job_free(struct job *j);

/* drops the claim's liveness lock once the job is finished or given back */
void job_unlock(struct prov *p, struct job *j);

/* records a finished step and renews the lease for seconds (at least the
 * configured lease): 0 still ours, PROV_NONE the claim is lost, -1 error */
int  job_step(struct prov *p, struct job *j, const char *step, int seconds);

/* the lease held for at least seconds more, before a step that may take
 * that long (an application's migrations): 0, PROV_NONE lost, -1 error */
int  job_extend(struct prov *p, struct job *j, int seconds);

/* the final transaction: job_begin, the caller's writes, job_commit */
int  job_begin(struct prov *p);
int  job_commit(struct prov *p, struct job *j, json_t *result);
/* the same in one round trip: b holds "BEGIN" and the caller's writes,
 * and gets the job's own write last. 0; PROV_NONE the claim is lost; -1
 * with the reason in err. Rolled back unless 0. */
int  job_commit_batch(struct prov *p, struct job *j, struct db_batch *b,
                      json_t *result, char *err, size_t len);

int  job_fail(struct prov *p, struct job *j, const char *error,
              int permanent);
int  job_release(struct prov *p, struct job *j);
/* back to the queue until seconds from now, the attempt not counted */
int  job_defer(struct prov *p, struct job *j, int seconds);

/* PROVISIONER_FAILPOINT=kind:step kills the provisioner there (tests) */
void failpoint(const char *kind, const char *step);

#endif
