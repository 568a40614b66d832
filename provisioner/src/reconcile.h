#ifndef PROV_RECONCILE_H
#define PROV_RECONCILE_H

#include "prov.h"

/* one pass: restart what should run, stop what is suspended, remove orphans */
int reconcile(struct prov *p);

/* services started, stopped (suspended) and tenants removed (orphans) */
struct reconcile_counts {
    unsigned long  passes;
    unsigned long  started;
    unsigned long  stopped;
    unsigned long  removed;
};

void reconcile_counts(struct reconcile_counts *out);

#endif
