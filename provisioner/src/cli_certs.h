#ifndef PROV_CLI_CERTS_H
#define PROV_CLI_CERTS_H

#include "prov.h"

/* what `provisioner certs ...` was given, parsed by cli.c */
struct cert_args {
    const char  *sub;        /* upload | show | delete | expiring */
    const char  *tenant;
    const char  *host;
    const char  *cert_file;
    const char  *key_file;
    int          days;
};

int cli_certs(struct prov *p, const struct cert_args *a);

#endif
