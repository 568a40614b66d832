#ifndef PROV_DB_H
#define PROV_DB_H

#include <libpq-fe.h>

PGconn   *db_connect(const char *conninfo);
/* the same server as conninfo, database dbname */
PGconn   *db_connect_db(const char *conninfo, const char *dbname);
int       db_exec(PGconn *conn, const char *what, const char *sql);
PGresult *db_query(PGconn *conn, const char *what, const char *sql,
                   int nparams, const char *const *params);
/* a statement whose rows do not matter: 0, or -1 with "registry: cannot
 * <what>" in err */
int       db_run(PGconn *conn, const char *what, const char *sql,
                 int nparams, const char *const *params, char *err,
                 size_t len);
int       db_begin(PGconn *conn);
int       db_commit(PGconn *conn);
void      db_rollback(PGconn *conn);

#endif
