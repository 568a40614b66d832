#ifndef PROV_DB_PREPARED_H
#define PROV_DB_PREPARED_H

#include <libpq-fe.h>

/*
 * PQexecParams, the statement prepared on the connection at its first use
 * (statements with parameters; others run as they are)
 */
PGresult *db_prepared_exec(PGconn *conn, const char *sql, int nparams,
                           const char *const *params);

#endif
