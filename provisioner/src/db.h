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
/*
 * Statements sent together and answered in one round trip (libpq's
 * pipeline mode), each with its own parameters, which must live until
 * db_batch_run returns. Inside an open transaction they are part of it.
 */
#define DB_BATCH_MAX  8

struct db_batch {
    int                 n;
    const char         *what[DB_BATCH_MAX];
    const char         *sql[DB_BATCH_MAX];
    int                 nparams[DB_BATCH_MAX];
    const char *const  *params[DB_BATCH_MAX];
    long                rows[DB_BATCH_MAX];    /* affected or returned */
};

/* the index of the statement, or -1 when the batch is full */
int       db_batch_add(struct db_batch *b, const char *what, const char *sql,
                       int nparams, const char *const *params);
/* 0 when every statement succeeded; -1 with "registry: cannot <what>" of
 * the first that failed in err (the others after it did not run) */
int       db_batch_run(PGconn *conn, struct db_batch *b, char *err,
                       size_t len);
int       db_begin(PGconn *conn);
int       db_commit(PGconn *conn);
void      db_rollback(PGconn *conn);

#endif
