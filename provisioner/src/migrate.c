#include "migrate.h"
#include "db.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>

/* Serialises concurrent `provisioner migrate` runs (several hosts starting at
 * once); any constant works as long as every provisioner uses the same one. */
#define MIGRATE_LOCK_KEY "7340011"

static int
is_applied(PGconn *conn, int version, int *applied)
{
    char        num[16];
    const char *params[1] = { num };
    PGresult   *res;

    snprintf(num, sizeof(num), "%d", version);
    res = db_query(conn, "read schema_version",
                   "SELECT 1 FROM schema_version WHERE version = $1",
                   1, params);
    if (res == NULL) {
        return -1;
    }
    *applied = PQntuples(res) > 0;
    PQclear(res);
    return 0;
}

static int
apply_one(PGconn *conn, const struct migration *m)
{
    char        num[16];
    char        what[160];
    const char *params[2] = { num, m->name };
    PGresult   *res;

    snprintf(num, sizeof(num), "%d", m->version);
    snprintf(what, sizeof(what), "migration %03d_%s", m->version, m->name);

    if (db_begin(conn) != 0) {
        return -1;
    }

    if (db_exec(conn, what, m->sql) != 0) {
        db_rollback(conn);
        return -1;
    }

    res = db_query(conn, "record schema_version",
                   "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                   2, params);
    if (res == NULL) {
        db_rollback(conn);
        return -1;
    }
    PQclear(res);

    if (db_commit(conn) != 0) {
        return -1;
    }

    log_info("applied %s", what);
    return 0;
}

int
migrate(PGconn *conn, int *napplied)
{
    int i, applied, rc = -1;

    *napplied = 0;

    if (db_exec(conn, "create schema_version",
                "SET client_min_messages = warning;"
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())") != 0)
    {
        return -1;
    }

    if (db_exec(conn, "take migration lock",
                "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")") != 0)
    {
        return -1;
    }

    for (i = 0; i < migrations_count; i++) {
        if (is_applied(conn, migrations[i].version, &applied) != 0) {
            goto done;
        }
        if (applied) {
            continue;
        }
        if (apply_one(conn, &migrations[i]) != 0) {
            goto done;
        }
        (*napplied)++;
    }

    rc = 0;

done:
    db_exec(conn, "release migration lock",
            "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")");
    return rc;
}
