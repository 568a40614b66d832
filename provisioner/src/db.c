#include "db.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

PGconn *
db_connect(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);

    if (conn == NULL) {
        log_err("registry: out of memory allocating a connection");
        return NULL;
    }

    if (PQstatus(conn) != CONNECTION_OK) {
        log_err("registry: cannot connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }

    return conn;
}

/*
 * The registry's server, another database on it (a tenant's): the same
 * conninfo, its dbname overridden; the first dbname is expanded as a
 * connection string, the second is a plain name.
 */
PGconn *
db_connect_db(const char *conninfo, const char *dbname)
{
    const char *const  keys[] = { "dbname", "dbname", NULL };
    const char *const  values[] = { conninfo, dbname, NULL };
    PGconn            *conn = PQconnectdbParams(keys, values, 1);

    if (conn == NULL) {
        log_err("database %s: out of memory allocating a connection", dbname);
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        log_err("database %s: cannot connect: %s", dbname,
                PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* Errors from libpq end in a newline; strip it so each log line is one line. */
static const char *
pg_error(PGconn *conn, PGresult *res)
{
    static char  buf[1024];
    const char  *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    size_t       len;

    if (msg == NULL || *msg == '\0') {
        msg = PQerrorMessage(conn);
    }

    len = strlen(msg);
    if (len >= sizeof(buf)) {
        len = sizeof(buf) - 1;
    }
    memcpy(buf, msg, len);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ')) {
        len--;
    }
    buf[len] = '\0';

    return buf;
}

int
db_exec(PGconn *conn, const char *what, const char *sql)
{
    PGresult *res = PQexec(conn, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK
        && PQresultStatus(res) != PGRES_TUPLES_OK)
    {
        log_err("registry: %s: %s", what, pg_error(conn, res));
        PQclear(res);
        return -1;
    }

    PQclear(res);
    return 0;
}

int
db_run(PGconn *conn, const char *what, const char *sql, int nparams,
       const char *const *params, char *err, size_t len)
{
    PGresult *res = db_query(conn, what, sql, nparams, params);

    if (res == NULL) {
        snprintf(err, len, "registry: cannot %s", what);
        return -1;
    }
    PQclear(res);
    return 0;
}

PGresult *
db_query(PGconn *conn, const char *what, const char *sql, int nparams,
         const char *const *params)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL,
                                 0);

    if (PQresultStatus(res) != PGRES_COMMAND_OK
        && PQresultStatus(res) != PGRES_TUPLES_OK)
    {
        log_err("registry: %s: %s", what, pg_error(conn, res));
        PQclear(res);
        return NULL;
    }

    return res;
}

int
db_begin(PGconn *conn)
{
    return db_exec(conn, "begin transaction", "BEGIN");
}

int
db_commit(PGconn *conn)
{
    return db_exec(conn, "commit transaction", "COMMIT");
}

void
db_rollback(PGconn *conn)
{
    PGresult *res = PQexec(conn, "ROLLBACK");

    PQclear(res);
}
