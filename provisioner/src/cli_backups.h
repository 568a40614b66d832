#ifndef PROV_CLI_BACKUPS_H
#define PROV_CLI_BACKUPS_H

#include "prov.h"

struct backup_args {
    const char  *name;          /* the verb's first argument */
    const char  *arg;           /* its second */
    const char  *arg2;
    const char  *display_name;
    const char  *status;
    int          wait;
    int          verify;
    int          wave;
    int          max_failures;
};

/* the verbs this file serves */
extern const char *const cli_backup_verbs[];
int cli_backups(struct prov *p, const char *verb, const struct backup_args *a);

#endif
