#ifndef PROV_CLI_H
#define PROV_CLI_H

#include "prov.h"

/* exit codes of the CLI verbs */
enum {
    EXIT_OK = 0,
    EXIT_ERROR = 1,       /* registry or internal error */
    EXIT_USAGE = 2,       /* bad arguments; the message names the option */
    EXIT_NOT_FOUND = 3,   /* no such tenant or job */
    EXIT_CONFLICT = 4,    /* exists, wrong status, or a job is pending */
    EXIT_JOB_FAILED = 5,  /* --wait: the job failed */
    EXIT_TIMEOUT = 6      /* --wait: still running when the wait ran out */
};

int cli_main(struct prov *p, const char *verb, int argc, char **argv);
/* cli_job.c: waits up to seconds for the job to finish, the finished job
 * in *out (the caller's to free); the job decides the exit code */
int cli_wait_job(struct prov *p, const char *job, int seconds, json_t **out);
/* JSON printed indented */
void cli_print_json(const char *text);
/* a job made by one of the SQL functions returning state, job, tenant:
 * printed, or waited for up to wait seconds; the exit code. Column 0 is
 * the status before (NULL: no tenant), or with made what was wrong (NULL:
 * the job was made) */
int cli_job_answer(struct prov *p, PGresult *res, const char *verb,
                   const char *name, int wait, int made);
int cli_is_verb(const char *verb);

#endif
