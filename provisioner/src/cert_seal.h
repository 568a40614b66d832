#ifndef PROV_CERT_SEAL_H
#define PROV_CERT_SEAL_H

#include "tenant_cert.h"

#include <stddef.h>

/*
 * A checked certificate as the registry's certificate functions take it:
 * the chain as bytea hex, the key sealed with the edges' certificate key
 * (associated data "ngx_tenant/cert/1" NUL host, as the edges open it),
 * the validity as Unix seconds. Shared by the CLI's upload and ACME.
 */
struct cert_sealed {
    char  *chain;
    char  *nonce;
    char  *key;
    char   not_before[32];
    char   not_after[32];
};

/* 0, or -1 with why in err */
int  cert_seal(const char *key_file, const char *host,
               const tenant_cert_t *cert, struct cert_sealed *out, char *err,
               size_t len);
void cert_sealed_free(struct cert_sealed *s);

/* the eight parameters the registry's certificate functions take in a row:
 * chain, key nonce, sealed key, names, issuer, key type, not before, not
 * after */
void cert_sealed_params(const struct cert_sealed *s, const tenant_cert_t *c,
                        const char **params);

#endif
