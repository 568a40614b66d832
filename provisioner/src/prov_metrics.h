#ifndef PROV_PROV_METRICS_H
#define PROV_PROV_METRICS_H

#include "check.h"
#include "prov.h"

/*
 * Rewrites conf.metrics_file (atomically: a new file renamed over the old)
 * in Prometheus text format: the checks, jobs, tenants, databases, disk,
 * certificates and the reconciler's counts. 0, or -1 (logged).
 */
int prov_metrics_write(struct prov *p, const struct check *c, int n);

#endif
