#ifndef PROV_MIGRATE_H
#define PROV_MIGRATE_H

#include <libpq-fe.h>

struct migration {
    int          version;
    const char  *name;
    const char  *sql;
};

/* generated at build time from provisioner/migrations/NNN_name.sql */
extern const struct migration migrations[];
extern const int              migrations_count;

int migrate(PGconn *conn, int *applied);

#endif
