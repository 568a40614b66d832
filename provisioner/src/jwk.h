#ifndef PROV_JWK_H
#define PROV_JWK_H

/*
 * Public keys the edge checks tenant tokens with, turned into what the
 * registry stores: a DER SubjectPublicKeyInfo and the one algorithm it
 * verifies (RS256 for RSA of 2048 to 8192 bits, ES256 for P-256). From a
 * PEM file (a public key or a certificate) or from one JWK of a JWKS.
 */

#include <jansson.h>
#include <stddef.h>

#define JWK_DER_MAX  1200

struct jwk_key {
    char           kid[129];
    const char    *alg;                  /* "RS256" or "ES256" */
    unsigned char  der[JWK_DER_MAX];
    size_t         der_len;
};

/* 0, or -1 with why in err */
int jwk_from_pem(const char *pem, size_t len, struct jwk_key *k, char *err,
                 size_t errlen);

/* 0; PROV_NONE (1) a key the edge cannot use (why in err: another kty,
 * alg or use); -1 a key that is malformed (why in err) */
int jwk_from_json(json_t *jwk, struct jwk_key *k, char *err, size_t errlen);

/* a kid as the registry takes it: 1 to 128 printable ASCII, no space */
int jwk_kid_valid(const char *kid);

#endif
