#ifndef PROV_CHECK_CMD_H
#define PROV_CHECK_CMD_H

#include "prov.h"

/*
 * `provisioner check [--json] [--store]`: runs the health checks and
 * prints them. Exits as monitoring plugins do: 0 all ok, 1 a warning,
 * 2 a critical (a check that could not be made is critical), and 64 for
 * bad arguments.
 */
int check_cmd(struct prov *p, int argc, char **argv);

#endif
