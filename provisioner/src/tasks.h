#ifndef PROV_TASKS_H
#define PROV_TASKS_H

#include "jobs.h"
#include "prov.h"

void task_run(struct prov *p, struct job *j);

#endif
