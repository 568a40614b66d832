#ifndef PROV_JWKS_H
#define PROV_JWKS_H

#include "prov.h"

#include <stddef.h>

/*
 * An issuer's JWKS, fetched by the provisioner (never by an nginx worker)
 * and copied into jwt_keys as one replacement per fetch: a key the issuer
 * adds is live at every edge within a refresh, one it drops stops being
 * accepted. A fetch that fails, or a set with no key the edge can use,
 * changes nothing and is tried again sooner.
 */

/* source id's URL now: the number of keys it has, or -1 (err says why;
 * also stored with the source) */
int jwks_fetch(struct prov *p, const char *id, const char *url, char *err,
               size_t errlen);

/* the daemon's pass: every source whose refresh is due. The number
 * fetched, or -1 when the registry failed */
int jwks_refresh(struct prov *p);

#endif
