#ifndef PROV_PGTOOL_H
#define PROV_PGTOOL_H

#include "prov.h"

/*
 * pg_dump and pg_restore against the registry's server, as the
 * provisioner connects to it: its conninfo reaches them through the
 * environment, never the command line. Both run as role (SET ROLE), so
 * nothing a tenant put in its database runs with the provisioner's
 * rights.
 */

/* custom format into the file at out, in the exported snapshot */
int pgtool_dump(struct prov *p, const char *db, const char *role,
                const char *snapshot, const char *out, char *err,
                size_t len);
/* the dump at in into the (empty) database db, owned by role */
int pgtool_restore(struct prov *p, const char *db, const char *role,
                   const char *in, char *err, size_t len);
/* its table of contents only: a dump that cannot be read fails */
int pgtool_list(struct prov *p, const char *in, char *err, size_t len);

#endif
