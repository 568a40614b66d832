#ifndef PROV_JWK_H
#define PROV_JWK_H

/*
 * One JWK of an issuer's JWKS turned into what the registry stores (a DER
 * SubjectPublicKeyInfo and its algorithm, as common/tenant_jwk.h checks
 * them).
 */

#include "tenant_jwk.h"

#include <jansson.h>
#include <stddef.h>

struct jwk_key {
    char           kid[TENANT_JWK_KID_MAX + 1];
    tenant_jwk_t   k;
};

/* 0; PROV_NONE (1) a key the edge cannot use (why in err: another kty,
 * alg or use); -1 a key that is malformed (why in err) */
int jwk_from_json(json_t *jwk, struct jwk_key *k, char *err, size_t errlen);

#endif
