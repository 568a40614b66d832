#ifndef PROV_TASKS_H
#define PROV_TASKS_H

#include "jobs.h"
#include "prov.h"

/* set by the daemon on SIGTERM: jobs stop between steps and are released */
extern volatile int tasks_stopping;

void task_run(struct prov *p, struct job *j);

#endif
