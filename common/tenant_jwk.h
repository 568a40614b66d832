
/*
 * A public key tenant_jwt may check tokens with, as the registry stores it:
 * a DER SubjectPublicKeyInfo and the one algorithm it verifies (RS256 for
 * RSA of 2048 to 8192 bits, ES256 for P-256).  Checked once, where it is
 * handed over: by the admin API (module) and the CLI (provisioner).
 */


#ifndef _TENANT_JWK_H_INCLUDED_
#define _TENANT_JWK_H_INCLUDED_


#include <stddef.h>
#include <openssl/evp.h>


#define TENANT_JWK_DER_MAX   1200
#define TENANT_JWK_KID_MAX   128
#define TENANT_JWK_PEM_MAX   16384


typedef struct {
    const char     *alg;                 /* "RS256" or "ES256" */
    unsigned char   der[TENANT_JWK_DER_MAX];
    size_t          der_len;
} tenant_jwk_t;


/* 0, or -1 with why in err: another type, curve or size of key */
int tenant_jwk_from_key(EVP_PKEY *key, tenant_jwk_t *k, char *err,
    size_t errlen);

/* a PEM public key ("BEGIN PUBLIC KEY") or certificate: 0, or -1 */
int tenant_jwk_from_pem(const char *pem, size_t len, tenant_jwk_t *k,
    char *err, size_t errlen);

/* 1 to 128 printable ASCII characters, no space */
int tenant_jwk_kid_valid(const char *kid, size_t len);


#endif /* _TENANT_JWK_H_INCLUDED_ */
