#ifndef PROV_BACKUP_SCHEDULE_H
#define PROV_BACKUP_SCHEDULE_H

#include "prov.h"

/*
 * The daemon's backup pass: tenants due a scheduled backup get a backup
 * job (backup_interval, spread by backup_jitter), and backups retention
 * no longer keeps are deleted, row first, then files. The number of jobs
 * queued, or -1.
 */
int backup_schedule(struct prov *p);

#endif
