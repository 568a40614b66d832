#ifndef PROV_CLI_JWT_H
#define PROV_CLI_JWT_H

#include "prov.h"

/*
 * provisioner jwt keys | sources | upload KID FILE | jwks URL [--refresh S]
 *                | remove KID|URL
 * The keys the edge checks tenant tokens with (tenant_jwt).
 */
int cli_jwt(struct prov *p, int argc, char **argv);

#endif
