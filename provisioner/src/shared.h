#ifndef PROV_SHARED_H
#define PROV_SHARED_H

#include "prov.h"
#include "tenant.h"

/* the runtime blueprint a blueprint's shared tenants run on, or NULL */
const char *shared_runtime_of(const struct blueprint *bp);
/* the runtime's own tenant name: rt-<runtime> */
void        shared_runtime_id(const char *runtime, char *out, size_t len);

/* makes sure the runtime runs and is healthy; its name goes to rt_id */
int  shared_ensure_runtime(struct prov *p, const struct tenant *t,
                           char *rt_id, size_t rt_len, char *err,
                           size_t len);
/* t's files into the runtime's sites/<tenant>/, readable by the runtime */
int  shared_write_files(struct prov *p, struct tenant *t, const char *rt_id,
                        char *err, size_t len);
int  shared_remove_files(struct prov *p, const char *tenant, char *err,
                         size_t len);
/* until the runtime serves t's own page */
int  shared_wait_healthy(struct prov *p, struct tenant *t, const char *rt_id,
                         char *err, size_t len);

#endif
