#ifndef PROV_RUN_H
#define PROV_RUN_H

#include "prov.h"

int run_daemon(struct prov *p);

#endif
