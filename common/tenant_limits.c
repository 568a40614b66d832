
/*
 * The ranges are what an edge can hold (ngx_http_tenant_limits_t: a rate
 * in thousandths of a request per second in 32 bits) and what still means
 * something: a burst of zero is allowed (no request above the rate), a
 * concurrency or quota of zero is not (it would be "suspended", which is
 * a status of its own).
 */


#include "tenant_limits.h"

#include <math.h>
#include <string.h>


const tenant_limit_t  tenant_limits[] = {
    { "rate", 0.001, 1000000, 0,
      "must be a number of requests per second, 0.001-1000000 "
      "(three decimals at most), or null for none" },
    { "burst", 0, 1000000, 1,
      "must be a whole number of requests, 0-1000000, or null for the "
      "rate's own (one second of it)" },
    { "connections", 1, 1000000, 1,
      "must be a whole number of requests at once, 1-1000000, or null for "
      "none" },
    { "monthly_requests", 1, 4611686018427387904.0, 1,
      "must be a whole number of requests a month, 1-2^62, or null for "
      "none" },
    { "monthly_bytes", 1, 4611686018427387904.0, 1,
      "must be a whole number of bytes a month (in and out), 1-2^62, or "
      "null for none" },
    { NULL, 0, 0, 0, NULL }
};


const tenant_limit_t *
tenant_limit_find(const char *name)
{
    const tenant_limit_t  *l;

    for (l = tenant_limits; l->name; l++) {
        if (strcmp(l->name, name) == 0) {
            return l;
        }
    }

    return NULL;
}


const char *
tenant_limit_check(const tenant_limit_t *l, double v)
{
    double  scaled;

    if (!isfinite(v) || v < l->min || v > l->max) {
        return l->why;
    }

    scaled = l->integer ? v : v * 1000;

    if (fabs(scaled - nearbyint(scaled)) > 1e-6) {
        return l->why;
    }

    return NULL;
}
