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
/* for the verbs' own files: JSON printed indented */
void cli_print_json(const char *text);
/* a job made by one of the SQL functions returning state, job, tenant
 * (state the status before, or with made NULL once checked): printed, or
 * waited for up to wait seconds; the exit code */
int cli_job_answer(struct prov *p, PGresult *res, const char *verb,
                   const char *name, int wait, int made);
int cli_is_verb(const char *verb);

#endif
