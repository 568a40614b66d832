#include "db.h"
#include "db_prepared.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
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
    PGresult *res = db_prepared_exec(conn, sql, nparams, params);

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
db_batch_add(struct db_batch *b, const char *what, const char *sql,
             int nparams, const char *const *params)
{
    if (b->n == DB_BATCH_MAX) {
        return -1;
    }
    b->what[b->n] = what;
    b->sql[b->n] = sql;
    b->nparams[b->n] = nparams;
    b->params[b->n] = params;
    b->rows[b->n] = -1;
    return b->n++;
}

int
db_batch_run(PGconn *conn, struct db_batch *b, char *err, size_t len)
{
    PGresult  *res;
    int        i, failed = -1, sent = 0;

    if (PQenterPipelineMode(conn) != 1) {
        log_err("registry: cannot enter pipeline mode: %s",
                pg_error(conn, NULL));
        snprintf(err, len, "registry: cannot %s", b->what[0]);
        return -1;
    }

    for (i = 0; i < b->n; i++) {
        if (PQsendQueryParams(conn, b->sql[i], b->nparams[i], NULL,
                              b->params[i], NULL, NULL, 0) != 1)
        {
            log_err("registry: %s: %s", b->what[i], pg_error(conn, NULL));
            failed = i;
            break;
        }
        sent++;
    }

    if (PQpipelineSync(conn) != 1) {
        log_err("registry: %s: %s", b->what[0], pg_error(conn, NULL));
        failed = failed < 0 ? 0 : failed;
        sent = 0;
    }

    /* each statement's result then NULL; PIPELINE_ABORTED after an error */
    for (i = 0; i < sent; i++) {
        while ((res = PQgetResult(conn)) != NULL) {
            switch (PQresultStatus(res)) {
            case PGRES_COMMAND_OK:
            case PGRES_TUPLES_OK:
                b->rows[i] = PQresultStatus(res) == PGRES_TUPLES_OK
                             ? PQntuples(res) : atol(PQcmdTuples(res));
                break;
            case PGRES_PIPELINE_ABORTED:
                break;
            default:
                if (failed < 0) {
                    log_err("registry: %s: %s", b->what[i],
                            pg_error(conn, res));
                    failed = i;
                }
            }
            PQclear(res);
        }
    }

    /* the sync's own result ends the pipeline */
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType  st = PQresultStatus(res);

        PQclear(res);
        if (st == PGRES_PIPELINE_SYNC) {
            break;
        }
    }

    if (PQexitPipelineMode(conn) != 1) {
        log_err("registry: cannot leave pipeline mode: %s",
                pg_error(conn, NULL));
        failed = failed < 0 ? 0 : failed;
    }

    if (failed >= 0) {
        snprintf(err, len, "registry: cannot %s", b->what[failed]);
        return -1;
    }
    return 0;
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
