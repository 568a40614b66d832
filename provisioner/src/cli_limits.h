#ifndef PROV_CLI_LIMITS_H
#define PROV_CLI_LIMITS_H

#include "prov.h"

/*
 * `provisioner limits NAME [set ...]` and `provisioner plans [set NAME
 * ...]`: argv is what follows the verb.
 */
int cli_limits(struct prov *p, const char *verb, int argc, char **argv);

#endif
