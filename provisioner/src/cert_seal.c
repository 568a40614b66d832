#define _GNU_SOURCE

#include "cert_seal.h"
#include "secret.h"
#include "tenant_seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "\x" and hex digits, malloc'd */
static char *
bytea(const unsigned char *src, size_t n)
{
    char *out = malloc(2 * n + 3);

    if (out != NULL) {
        bytea_hex(out, src, n);
    }
    return out;
}

int
cert_seal(const char *key_file, const char *host, const tenant_cert_t *cert,
          struct cert_sealed *out, char *err, size_t len)
{
    unsigned char   key[TENANT_SEAL_KEY], nonce[TENANT_SEAL_NONCE];
    unsigned char  *ct, aad[32 + 256];
    size_t          alen = strlen(host);
    int             rc = -1;

    memset(out, 0, sizeof(*out));

    if (key_file[0] == '\0') {
        snprintf(err, len, "certificate_key is not set in the config: the "
                 "edges' certificate key file is needed to seal the key");
        return -1;
    }
    if (alen > 253) {
        snprintf(err, len, "host name too long");
        return -1;
    }
    if (tenant_seal_key_load(key_file, key, err, len) != 0) {
        return -1;
    }

    memcpy(aad, "ngx_tenant/cert/1", 18);
    memcpy(aad + 18, host, alen);
    alen += 18;

    ct = malloc(cert->key_len + TENANT_SEAL_TAG);
    if (ct == NULL
        || tenant_seal(key, aad, alen, cert->key, cert->key_len, nonce, ct)
           != 0
        || (out->chain = bytea(cert->chain, cert->chain_len)) == NULL
        || (out->key = bytea(ct, cert->key_len + TENANT_SEAL_TAG)) == NULL
        || (out->nonce = bytea(nonce, TENANT_SEAL_NONCE)) == NULL)
    {
        snprintf(err, len, "cannot seal the certificate's key");
        cert_sealed_free(out);
    } else {
        snprintf(out->not_before, sizeof(out->not_before), "%lld",
                 (long long) cert->not_before);
        snprintf(out->not_after, sizeof(out->not_after), "%lld",
                 (long long) cert->not_after);
        rc = 0;
    }

    explicit_bzero(key, sizeof(key));
    free(ct);
    return rc;
}

void
cert_sealed_free(struct cert_sealed *s)
{
    free(s->chain);
    free(s->nonce);
    free(s->key);
    s->chain = s->nonce = s->key = NULL;
}

void
cert_sealed_params(const struct cert_sealed *s, const tenant_cert_t *c,
                   const char **params)
{
    params[0] = s->chain;
    params[1] = s->nonce;
    params[2] = s->key;
    params[3] = c->names;
    params[4] = c->issuer;
    params[5] = c->key_type;
    params[6] = s->not_before;
    params[7] = s->not_after;
}
