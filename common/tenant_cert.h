
/*
 * A certificate and key as an operator or a CA hands them over (PEM),
 * checked before anything is stored: the key matches, the certificate
 * covers the host, it is valid now, the chain is in order.  Shared by the
 * admin API (module) and the CLI (provisioner).
 */


#ifndef _TENANT_CERT_H_INCLUDED_
#define _TENANT_CERT_H_INCLUDED_


#include <stddef.h>
#include <time.h>


#define TENANT_CERT_MAX_CHAIN   8
#define TENANT_CERT_MAX_PEM     65536


typedef struct {
    unsigned char  *chain;       /* DER certificates back to back, leaf first */
    size_t          chain_len;
    unsigned char  *key;         /* DER (PKCS#8) private key */
    size_t          key_len;
    time_t          not_before;
    time_t          not_after;
    char            issuer[256];
    char            names[1024]; /* the leaf's DNS names, comma-separated */
    char            key_type[16];    /* "ECDSA P-256", "RSA 2048", ... */
} tenant_cert_t;


/*
 * 0, with out filled (tenant_cert_free releases it); or -1 with the
 * reason in err, naming the field (certificate, key) and what would do.
 * host: a name the leaf must cover ("*.example.com" for a wildcard).
 */
int tenant_cert_check(const char *chain_pem, size_t chain_len,
    const char *key_pem, size_t key_len, const char *host, time_t now,
    tenant_cert_t *out, char *err, size_t errlen);
void tenant_cert_free(tenant_cert_t *c);


#endif /* _TENANT_CERT_H_INCLUDED_ */
