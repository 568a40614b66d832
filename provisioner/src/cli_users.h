#ifndef PROV_CLI_USERS_H
#define PROV_CLI_USERS_H

#include "prov.h"

/*
 * `provisioner users [list | add NAME | password NAME | remove NAME |
 * sessions [NAME] | revoke NAME]`: argv is what follows the verb.
 */
int cli_users(struct prov *p, int argc, char **argv);

#endif
