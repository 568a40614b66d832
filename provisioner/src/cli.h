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
int cli_is_verb(const char *verb);

#endif
