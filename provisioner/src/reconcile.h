#ifndef PROV_RECONCILE_H
#define PROV_RECONCILE_H

#include "prov.h"

/* one pass: restart what should run, stop what is suspended, remove orphans */
int reconcile(struct prov *p);

#endif
