#ifndef PROV_CHECK_H
#define PROV_CHECK_H

#include "prov.h"

/* a check's verdict; "worse" is higher, except for certificates' days */
enum { CHECK_OK = 0, CHECK_WARNING = 1, CHECK_CRITICAL = 2 };

#define CHECKS_MAX  8

struct check {
    const char  *name;       /* disk, database_size, failed_jobs, ... */
    int          status;
    int          has_value;  /* 0: nothing to measure (no certificates) */
    double       value;
    double       warning;    /* the thresholds it was held to */
    double       critical;
    char         detail[256];
};

/*
 * Runs every check against this machine and the registry, with the
 * thresholds of p->conf; the checks go to out[0 .. *n). -1 when the
 * registry did not answer (the checks it could make are still there).
 */
int checks_run(struct prov *p, struct check *out, int *n);

/* this provisioner's rows of health_checks replaced by these */
int checks_store(struct prov *p, const struct check *c, int n);

const char *check_status_name(int status);

#endif
