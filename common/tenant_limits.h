
/*
 * A tenant's (or a plan's) traffic limits: the fields, their ranges and
 * their words, shared by the module's admin API and the provisioner's CLI
 * so that both refuse the same values the same way.  The registry's CHECKs
 * (migration 012) hold the same ranges.
 */


#ifndef _TENANT_LIMITS_H_INCLUDED_
#define _TENANT_LIMITS_H_INCLUDED_


#include <stddef.h>


typedef struct {
    const char   *name;       /* the JSON field, and --name on the CLI */
    double        min;
    double        max;
    int           integer;    /* else up to three decimals */
    const char   *why;        /* what a valid value is */
} tenant_limit_t;


/* rate, burst, connections, monthly_requests, monthly_bytes; NULL-ended */
extern const tenant_limit_t  tenant_limits[];


const tenant_limit_t *tenant_limit_find(const char *name);

/* NULL when v is valid for the field, else why not (the field's why) */
const char *tenant_limit_check(const tenant_limit_t *l, double v);


#endif /* _TENANT_LIMITS_H_INCLUDED_ */
