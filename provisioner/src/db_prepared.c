#define _POSIX_C_SOURCE 200809L

/*
 * Statements with parameters are prepared once per connection and then
 * only bound and run. Parsing and planning were about half of what the
 * registry spent on the provisioner's statements in a burst of creates
 * (perf: pg_parse_query, pg_analyze_and_rewrite, pg_plan_query against
 * the executor). A statement is known by its text and by the connection's
 * server process, so a new connection (a reconnect, a worker's own after
 * fork) prepares again. The first use sends the Parse and the Execute
 * together (pipeline mode): preparing costs no round trip of its own.
 */

#include "db_prepared.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a few hundred distinct statements at most; a slot's old one is dropped */
#define PREPARED_SLOTS  512
#define PREPARED_PROBE  8

struct prepared {
    const PGconn  *conn;
    int            backend;
    uint32_t       hash;
    unsigned long  id;        /* its name on the server: "p<id>" */
    char          *sql;
};

static struct prepared  slots[PREPARED_SLOTS];
static unsigned long    next_id = 1;
static unsigned         victim;

static uint32_t
text_hash(const char *s)
{
    uint32_t  h = 2166136261u;

    while (*s) {
        h = (h ^ (unsigned char) *s++) * 16777619u;
    }
    return h;
}

/*
 * The statement's slot: its own, or the one it is to take (an empty one,
 * one this connection's address held for an earlier server process, else
 * one in turn). Another live connection's statements are kept: taking
 * their slots would have two connections prepare over and over.
 */
static struct prepared *
lookup(const PGconn *conn, int backend, const char *sql, uint32_t h,
       int *found)
{
    struct prepared  *s, *take = NULL;
    unsigned          i;

    for (i = 0; i < PREPARED_PROBE; i++) {
        s = &slots[(h + i) % PREPARED_SLOTS];
        if (s->sql != NULL && s->conn == conn && s->backend == backend
            && s->hash == h && strcmp(s->sql, sql) == 0)
        {
            *found = 1;
            return s;
        }
        if (take == NULL
            && (s->sql == NULL
                || (s->conn == conn && s->backend != backend)))
        {
            take = s;
        }
    }
    *found = 0;
    if (take == NULL) {
        take = &slots[(h + victim++ % PREPARED_PROBE) % PREPARED_SLOTS];
    }
    return take;
}

/* what a pipeline still holds, read to its sync, and the mode left */
static void
drain(PGconn *conn)
{
    PGresult        *res;
    ExecStatusType   st;
    int              nulls = 0;

    /* each statement's results end in NULL; two NULLs in a row: nothing
     * more is coming (a broken connection) */
    while (nulls < 2) {
        res = PQgetResult(conn);
        if (res == NULL) {
            nulls++;
            continue;
        }
        nulls = 0;
        st = PQresultStatus(res);
        PQclear(res);
        if (st == PGRES_PIPELINE_SYNC) {
            break;
        }
    }
    (void) PQexitPipelineMode(conn);
}

/*
 * Parse and Execute in one round trip: the Execute's result, or the
 * Parse's error (then the Execute did not run), or an error of the
 * connection's. *prepared says whether the Parse took.
 */
static PGresult *
prepare_and_run(PGconn *conn, const char *name, const char *sql,
                int nparams, const char *const *params, int *prepared)
{
    PGresult  *parse, *out, *res;

    *prepared = 0;
    if (PQenterPipelineMode(conn) != 1) {
        return PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
    }
    if (PQsendPrepare(conn, name, sql, nparams, NULL) != 1
        || PQsendQueryPrepared(conn, name, nparams, params, NULL, NULL, 0)
           != 1
        || PQpipelineSync(conn) != 1)
    {
        res = PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
        drain(conn);
        return res;
    }

    /* one result and a NULL for each; then the sync's, read by drain */
    parse = PQgetResult(conn);
    if (parse != NULL) {
        while ((res = PQgetResult(conn)) != NULL) {
            PQclear(res);
        }
    }
    out = PQgetResult(conn);
    if (out != NULL) {
        while ((res = PQgetResult(conn)) != NULL) {
            PQclear(res);
        }
    }
    drain(conn);

    if (parse != NULL && PQresultStatus(parse) == PGRES_COMMAND_OK) {
        *prepared = 1;
        PQclear(parse);
        return out ? out : PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
    }
    PQclear(out);
    return parse ? parse : PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
}

PGresult *
db_prepared_exec(PGconn *conn, const char *sql, int nparams,
                 const char *const *params)
{
    struct prepared  *s;
    char              name[32];
    uint32_t          h;
    int               backend, found, prepared;
    PGresult         *res;

    backend = PQbackendPID(conn);
    if (nparams == 0 || backend == 0
        || PQpipelineStatus(conn) != PQ_PIPELINE_OFF)
    {
        return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    }

    h = text_hash(sql);
    s = lookup(conn, backend, sql, h, &found);
    if (found) {
        snprintf(name, sizeof(name), "p%lu", s->id);
        return PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
    }

    snprintf(name, sizeof(name), "p%lu", next_id);
    res = prepare_and_run(conn, name, sql, nparams, params, &prepared);
    if (prepared) {
        char *copy = strdup(sql);

        /* out of memory: the statement stays prepared, unremembered */
        if (copy != NULL) {
            free(s->sql);
            s->conn = conn;
            s->backend = backend;
            s->hash = h;
            s->id = next_id;
            s->sql = copy;
        }
        next_id++;
    }
    return res;
}
