#define _POSIX_C_SOURCE 200809L

/*
 * A job the CLI made, printed or waited for (LISTEN job_done), and the
 * exit code it stands for: what every verb that makes a job shares.
 */

#include "cli.h"
#include "db.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
cli_print_json(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    char   *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

    printf("%s\n", s ? s : text);
    free(s);
    json_decref(v);
}

/*
 * Waits for job_done on the job, up to seconds. The finished job goes to
 * *out (the caller's to free); the job decides the exit code.
 */
int
cli_wait_job(struct prov *p, const char *job, int seconds, json_t **out)
{
    const char      *params[1] = { job };
    PGresult        *res;
    PGnotify        *n;
    struct pollfd    pfd;
    struct timespec  t0, t;
    long             left;
    const char      *status;

    *out = NULL;

    if (db_exec(p->conn, "listen job_done", "LISTEN job_done") != 0) {
        return EXIT_ERROR;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);

    for ( ;; ) {
        /* read first: the job may have finished before we listened */
        res = db_query(p->conn, "read the job",
                       "SELECT finished, job FROM job_read($1::bigint)", 1,
                       params);
        if (res == NULL) {
            return EXIT_ERROR;
        }
        if (PQntuples(res) != 1) {
            PQclear(res);
            fprintf(stderr, "provisioner: job %s is gone\n", job);
            return EXIT_NOT_FOUND;
        }
        if (PQgetvalue(res, 0, 0)[0] == 't') {
            *out = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
            PQclear(res);
            status = json_string_value(json_object_get(*out, "status"));
            if (status && strcmp(status, "done") == 0) {
                return EXIT_OK;
            }
            fprintf(stderr, "provisioner: job %s failed: %s\n", job,
                    json_string_value(json_object_get(*out, "error")));
            return EXIT_JOB_FAILED;
        }
        PQclear(res);

        clock_gettime(CLOCK_MONOTONIC, &t);
        left = seconds * 1000L - ((t.tv_sec - t0.tv_sec) * 1000L
                                  + (t.tv_nsec - t0.tv_nsec) / 1000000L);
        if (left <= 0) {
            fprintf(stderr, "provisioner: job %s still running after %d s\n",
                    job, seconds);
            return EXIT_TIMEOUT;
        }

        pfd.fd = PQsocket(p->conn);
        pfd.events = POLLIN;
        if (poll(&pfd, 1, (int) (left > 1000 ? 1000 : left)) < 0
            && errno != EINTR)
        {
            return EXIT_ERROR;
        }
        if (PQconsumeInput(p->conn) == 0) {
            log_err("registry: %s", PQerrorMessage(p->conn));
            return EXIT_ERROR;
        }
        while ((n = PQnotifies(p->conn)) != NULL) {
            PQfreemem(n);
        }
    }
}

/* state, job, tenant from one of the tenant_* SQL functions */
int
cli_job_answer(struct prov *p, PGresult *res, const char *verb,
               const char *name, int wait, int create)
{
    json_t     *job;
    char        id[32], *text;
    const char *state, *msg;
    int         rc;

    if (PQntuples(res) != 1) {
        fprintf(stderr, "provisioner %s: unexpected answer\n", verb);
        return EXIT_ERROR;
    }

    state = PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0);

    if (create && state) {
        /* "field|message": the message lists what would be valid */
        msg = strchr(state, '|');
        fprintf(stderr, "provisioner create: --%.*s: %s\n",
                strncmp(state, "driver|", 7) == 0
                ? 9 : msg ? (int) (msg - state) : (int) strlen(state),
                strncmp(state, "driver|", 7) == 0 ? "blueprint" : state,
                msg ? msg + 1 : "refused");
        return EXIT_USAGE;
    }
    if (!create && state == NULL) {
        fprintf(stderr, "provisioner %s: no tenant named %s\n", verb,
                name);
        return EXIT_NOT_FOUND;
    }
    if (PQgetisnull(res, 0, 1)) {
        fprintf(stderr, "provisioner %s: %s is %s, which does not allow "
                "this\n", verb, name, state);
        return EXIT_CONFLICT;
    }

    job = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    snprintf(id, sizeof(id), "%lld",
             (long long) json_integer_value(json_object_get(job, "id")));
    json_decref(job);

    if (wait) {
        rc = cli_wait_job(p, id, wait, &job);
        if (job) {
            text = json_dumps(job, JSON_COMPACT);
            cli_print_json(text ? text : "{}");
            free(text);
            json_decref(job);
        }
        return rc;
    }
    cli_print_json(PQgetvalue(res, 0, 1));
    return EXIT_OK;
}
