#ifndef PROV_CGROUP_H
#define PROV_CGROUP_H

#include "conf.h"

#include <stddef.h>
#include <sys/types.h>

/*
 * Memory and CPU limits for the process driver's services, in control
 * groups: cgroup v2 (memory.max, cpu.max) where the unified hierarchy has
 * those controllers, else cgroup v1's memory and cpu hierarchies
 * (memory.limit_in_bytes, cpu.cfs_quota_us). Each service gets
 * {cgroup_root}/[controller/]{cgroup_parent}/{tenant}.{service}.
 */

enum cgroup_mode { CGROUP_NONE, CGROUP_V1, CGROUP_V2 };

/* which kind this machine lets us write; CGROUP_NONE with why in err */
enum cgroup_mode cgroup_detect(const struct conf *c, char *err, size_t len);

/* the service's group(s) made and limited, pid moved in: 0, or -1 with
 * why in err */
int  cgroup_enter(const struct conf *c, enum cgroup_mode mode,
                  const char *tenant, const char *service, long memory_mb,
                  double cpus, pid_t pid, char *err, size_t len);

/* the service's group(s) removed, once its processes are gone */
void cgroup_remove(const struct conf *c, enum cgroup_mode mode,
                   const char *tenant, const char *service);

#endif
