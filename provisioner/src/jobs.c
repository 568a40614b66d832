#define _DEFAULT_SOURCE

#include "jobs.h"
#include "db.h"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the advisory lock class of claimed jobs (the key's first half) */
#define JOB_LOCK_CLASS  "1785688435"

/* for the log: a job of no tenant (the platform's certificate) */
static const char *
whose(const struct job *j)
{
    return j->tenant[0] != '\0' ? j->tenant : "the platform";
}

int
job_claim(struct prov *p, struct job *j)
{
    char        lease[16];
    const char *params[2] = { p->conf.id, lease };
    PGresult   *res;

    memset(j, 0, sizeof(*j));
    snprintf(lease, sizeof(lease), "%d", p->conf.lease);

    /*
     * SKIP LOCKED lets provisioners claim side by side. A running job's
     * claimer holds a session advisory lock on it: when that lock is gone,
     * so is the claimer's connection (killed, crashed), and the job is
     * taken over at once. A claimer that hangs with its connection open
     * keeps its lock; the lease covers that case.
     */
    res = db_query(p->conn, "claim a job",
                   "UPDATE jobs SET status = 'running', claimed_by = $1,"
                   "       attempts = attempts + 1, updated_at = now(),"
                   "       lease_until = now() + make_interval(secs => $2::int)"
                   " WHERE id = (SELECT id FROM jobs"
                   "              WHERE (status = 'queued' AND run_after <= now())"
                   "                 OR (status = 'running'"
                   "                     AND (lease_until < now()"
                   "                          OR NOT EXISTS ("
                   "                            SELECT 1 FROM pg_locks l"
                   "                             WHERE l.locktype = 'advisory'"
                   "                               AND l.classid = " JOB_LOCK_CLASS
                   "                               AND l.objid::bigint"
                   "                                   = jobs.id % 2147483647"
                   "                               AND l.objsubid = 2)))"
                   "              ORDER BY id LIMIT 1"
                   "              FOR UPDATE SKIP LOCKED)"
                   " RETURNING id, coalesce(tenant_id, ''), kind, payload,"
                   "           attempts, max_attempts,"
                   "           pg_try_advisory_lock(" JOB_LOCK_CLASS ","
                   "                                (id % 2147483647)::int)",
                   2, params);
    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        return PROV_NONE;
    }

    j->id = atoll(PQgetvalue(res, 0, 0));
    snprintf(j->idstr, sizeof(j->idstr), "%lld", j->id);
    snprintf(j->tenant, sizeof(j->tenant), "%s", PQgetvalue(res, 0, 1));
    snprintf(j->kind, sizeof(j->kind), "%s", PQgetvalue(res, 0, 2));
    j->payload = json_loads(PQgetvalue(res, 0, 3), 0, NULL);
    j->attempts = atoi(PQgetvalue(res, 0, 4));
    j->max_attempts = atoi(PQgetvalue(res, 0, 5));
    PQclear(res);

    if (j->payload == NULL) {
        j->payload = json_object();
    }

    log_info("job %lld: claimed %s of %s (attempt %d of %d)", j->id, j->kind,
             whose(j), j->attempts, j->max_attempts);
    return 0;
}

/* the job is no longer ours: its liveness lock goes */
void
job_unlock(struct prov *p, struct job *j)
{
    const char *params[1] = { j->idstr };
    PGresult   *res;

    res = db_query(p->conn, "unlock the job",
                   "SELECT pg_advisory_unlock(" JOB_LOCK_CLASS ","
                   "                          ($1::bigint % 2147483647)::int)",
                   1, params);
    if (res != NULL) {
        PQclear(res);
    }
}

void
job_free(struct job *j)
{
    json_decref(j->payload);
    j->payload = NULL;
}

int
job_extend(struct prov *p, struct job *j, int seconds)
{
    char        secs[16];
    const char *params[3] = { j->idstr, p->conf.id, secs };
    PGresult   *res;
    int         n;

    snprintf(secs, sizeof(secs), "%d",
             seconds > p->conf.lease ? seconds : p->conf.lease);
    res = db_query(p->conn, "extend the job's lease",
                   "UPDATE jobs SET lease_until = now()"
                   "       + make_interval(secs => $3::int), updated_at = now()"
                   " WHERE id = $1 AND claimed_by = $2 AND status = 'running'",
                   3, params);
    if (res == NULL) {
        return -1;
    }
    n = atoi(PQcmdTuples(res));
    PQclear(res);
    return n == 1 ? 0 : PROV_NONE;
}

int
job_step(struct prov *p, struct job *j, const char *step, int seconds)
{
    char        lease[16];
    const char *params[4] = { j->idstr, p->conf.id, step, lease };
    PGresult   *res;
    int         n;

    snprintf(lease, sizeof(lease), "%d",
             seconds > p->conf.lease ? seconds : p->conf.lease);

    res = db_query(p->conn, "record a job step",
                   "UPDATE jobs SET steps = steps || jsonb_build_object($3::text,"
                   "       now()), updated_at = now(),"
                   "       lease_until = now() + make_interval(secs => $4::int)"
                   " WHERE id = $1 AND claimed_by = $2 AND status = 'running'",
                   4, params);
    if (res == NULL) {
        return -1;
    }
    n = atoi(PQcmdTuples(res));
    PQclear(res);

    if (n != 1) {
        log_warn("job %lld: lost its claim (lease expired?) after step %s",
                 j->id, step);
        return PROV_NONE;
    }
    log_debug("job %lld: step %s done", j->id, step);
    return 0;
}

int
job_begin(struct prov *p)
{
    return db_begin(p->conn);
}

int
job_commit_batch(struct prov *p, struct job *j, struct db_batch *b,
                 json_t *result, char *err, size_t len)
{
    char        *text;
    const char  *params[3];
    int          k, rc;

    text = json_dumps(result ? result : json_object(), JSON_COMPACT);
    if (text == NULL) {
        snprintf(err, len, "out of memory");
        db_rollback(p->conn);
        return -1;
    }
    params[0] = j->idstr;
    params[1] = p->conf.id;
    params[2] = text;

    k = db_batch_add(b, "finish the job",
                     "UPDATE jobs SET status = 'done', result = $3::jsonb,"
                     "       error = NULL, finished_at = now(),"
                     "       updated_at = now(), lease_until = NULL"
                     " WHERE id = $1 AND claimed_by = $2"
                     "   AND status = 'running'", 3, params);
    if (k < 0) {
        snprintf(err, len, "too many statements for one batch");
        rc = -1;
    } else {
        rc = db_batch_run(p->conn, b, err, len);
    }
    explicit_bzero(text, strlen(text));
    free(text);

    /* another provisioner took the job over: its work counts, not ours */
    if (rc == 0 && b->rows[k] != 1) {
        log_warn("job %lld: lost its claim, not finishing it", j->id);
        rc = PROV_NONE;
    }
    if (rc != 0) {
        db_rollback(p->conn);
        return rc;
    }

    if (db_commit(p->conn) != 0) {
        snprintf(err, len, "registry: cannot commit");
        return -1;
    }
    log_info("job %lld: %s of %s done", j->id, j->kind, whose(j));
    return 0;
}

int
job_commit(struct prov *p, struct job *j, json_t *result)
{
    char             err[256];
    struct db_batch  b;

    /* the caller's writes are sent already: the job's own alone */
    memset(&b, 0, sizeof(b));
    return job_commit_batch(p, j, &b, result, err, sizeof(err)) == 0 ? 0 : -1;
}

int
job_fail(struct prov *p, struct job *j, const char *error, int permanent)
{
    const char *params[4] = { j->idstr, error, permanent ? "t" : "f",
                              p->conf.id };
    PGresult   *res;
    int         failed;

    if (db_begin(p->conn) != 0) {
        return -1;
    }

    /* retries back off: 2, 4, 8 ... up to 60 seconds */
    res = db_query(p->conn, "fail the job",
                   "UPDATE jobs SET"
                   "   status = CASE WHEN $3::bool OR attempts >= max_attempts"
                   "                 THEN 'failed' ELSE 'queued' END,"
                   "   finished_at = CASE WHEN $3::bool"
                   "                       OR attempts >= max_attempts"
                   "                      THEN now() END,"
                   "   run_after = now() + make_interval(secs =>"
                   "                 least(60, power(2, attempts)::int)),"
                   "   error = $2, claimed_by = NULL, lease_until = NULL,"
                   "   updated_at = now()"
                   " WHERE id = $1 AND claimed_by = $4 AND status = 'running'"
                   " RETURNING status", 4, params);
    if (res == NULL) {
        db_rollback(p->conn);
        return -1;
    }
    failed = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "failed") == 0;
    PQclear(res);

    /* a create that will not be retried leaves a failed tenant (404) */
    if (failed && strcmp(j->kind, "create") == 0) {
        const char *tp[1] = { j->tenant };

        res = db_query(p->conn, "mark the tenant failed",
                       "UPDATE tenants SET status = 'failed', updated_at = now()"
                       " WHERE id = $1 AND status = 'provisioning'", 1, tp);
        if (res == NULL) {
            db_rollback(p->conn);
            return -1;
        }
        PQclear(res);
    }

    if (db_commit(p->conn) != 0) {
        return -1;
    }

    if (failed) {
        log_err("job %lld: %s of %s failed for good: %s", j->id, j->kind,
                whose(j), error);
    } else {
        log_warn("job %lld: %s of %s failed (attempt %d of %d), will retry: %s",
                 j->id, j->kind, whose(j), j->attempts, j->max_attempts,
                 error);
    }
    return 0;
}

/* back to the queue from seconds on, the attempt not counted */
static int
requeue(struct prov *p, struct job *j, int seconds)
{
    char        secs[16];
    const char *params[3] = { j->idstr, p->conf.id, secs };
    PGresult   *res;

    snprintf(secs, sizeof(secs), "%d", seconds);
    res = db_query(p->conn, "requeue the job",
                   "UPDATE jobs SET status = 'queued', claimed_by = NULL,"
                   "       lease_until = NULL,"
                   "       run_after = now() + make_interval(secs => $3::int),"
                   "       attempts = greatest(attempts - 1, 0),"
                   "       updated_at = now()"
                   " WHERE id = $1 AND claimed_by = $2 AND status = 'running'",
                   3, params);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    return 0;
}

/* on SIGTERM between steps */
int
job_release(struct prov *p, struct job *j)
{
    if (requeue(p, j, 0) != 0) {
        return -1;
    }
    log_info("job %lld: released on shutdown", j->id);
    return 0;
}

int
job_defer(struct prov *p, struct job *j, int seconds)
{
    if (requeue(p, j, seconds) != 0) {
        return -1;
    }
    log_info("job %lld: deferred for %d s", j->id, seconds);
    return 0;
}

/*
 * PROVISIONER_FAILPOINT=kind:step kills the process there; kind:step:stop
 * stops it (SIGSTOP), for a test to change the registry under a claimer
 * that is about to go on, and then to let it go on (SIGCONT).
 */
void
failpoint(const char *kind, const char *step)
{
    const char *fp = getenv("PROVISIONER_FAILPOINT"), *rest;
    size_t      n, m;

    if (fp == NULL) {
        return;
    }
    n = strlen(kind);
    m = strlen(step);
    if (strncmp(fp, kind, n) != 0 || fp[n] != ':'
        || strncmp(fp + n + 1, step, m) != 0)
    {
        return;
    }
    rest = fp + n + 1 + m;
    if (*rest == '\0') {
        log_warn("failpoint %s:%s: SIGKILL", kind, step);
        kill(getpid(), SIGKILL);
    } else if (strcmp(rest, ":stop") == 0) {
        log_warn("failpoint %s:%s: SIGSTOP", kind, step);
        kill(getpid(), SIGSTOP);
    }
}
