#ifndef PROV_RECONCILE_H
#define PROV_RECONCILE_H

#include "prov.h"

/* one pass: restart what should run, stop what is suspended, remove orphans */
int reconcile(struct prov *p);

/* services started, stopped (suspended), tenants removed (orphans) and
 * tenants whose endpoints followed their moved services */
struct reconcile_counts {
    unsigned long  passes;
    unsigned long  started;
    unsigned long  stopped;
    unsigned long  removed;
    unsigned long  moved;
};

void reconcile_counts(struct reconcile_counts *out);

#endif
