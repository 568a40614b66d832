#ifndef PROV_ACME_H
#define PROV_ACME_H

#include "jobs.h"
#include "prov.h"

#include <jansson.h>
#include <stddef.h>

/*
 * Automatic certificates. acme_schedule is the reconciler's pass: it
 * queues a 'certificate' job for each wanted name (a verified custom
 * domain, the platform wildcard) that has no certificate or is due for
 * renewal. acme_certificate runs such a job: account, order, challenges,
 * finalize, download, store.
 */

#define ACME_DEFER  2    /* the hourly cap: try again in *wait_s seconds */
#define ACME_STOP   3    /* shutting down: give the job back */

/* jobs queued, or -1 */
int acme_schedule(struct prov *p);

/*
 * 0: stored (or skipped: the name is no longer wanted), with the job's
 * final transaction open and *result set for job_commit; ACME_DEFER;
 * ACME_STOP; -1 failed, why in err (recorded on the name).
 */
int acme_certificate(struct prov *p, struct job *j, json_t **result,
                     int *wait_s, char *err, size_t len);

#endif
