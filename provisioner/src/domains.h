#ifndef PROV_DOMAINS_H
#define PROV_DOMAINS_H

#include "prov.h"

/*
 * One pass over the custom-domain claims that are due: each one's TXT
 * record _ngx-tenant.{domain} is looked up, and a claim whose token is
 * there becomes the tenant's domain. How many were verified, or -1.
 */
int domains_verify(struct prov *p);

#endif
