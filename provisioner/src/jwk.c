#define _POSIX_C_SOURCE 200809L

/*
 * A JWK's members are checked here, an EC point against its curve (an
 * invalid-curve attack's key would be off it); the key itself as an
 * upload's is (tenant_jwk.c).
 */

#include "jwk.h"
#include "prov.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a base64url member into out: its length, or -1 */
static int
b64url_member(json_t *jwk, const char *name, unsigned char *out, size_t size)
{
    const char  *s;
    char        *std;
    size_t       n, i, padded;
    int          m;

    s = json_string_value(json_object_get(jwk, name));
    if (s == NULL || (n = strlen(s)) == 0 || n > 4 * size / 3 + 4) {
        return -1;
    }
    padded = (n + 3) / 4 * 4;
    std = malloc(padded + 1);
    if (std == NULL) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (s[i] == '-') {
            std[i] = '+';
        } else if (s[i] == '_') {
            std[i] = '/';
        } else if (s[i] == '+' || s[i] == '/' || s[i] == '=') {
            free(std);
            return -1;          /* base64url has none of these */
        } else {
            std[i] = s[i];
        }
    }
    for (; i < padded; i++) {
        std[i] = '=';
    }
    std[padded] = '\0';

    {
        unsigned char  buf[1100];

        if (padded / 4 * 3 > sizeof(buf)) {
            free(std);
            return -1;
        }
        m = EVP_DecodeBlock(buf, (unsigned char *) std, (int) padded);
        free(std);
        if (m < 0) {
            return -1;
        }
        m -= (int) (padded - n);        /* the padding decoded as zeros */
        if (m <= 0 || (size_t) m > size) {
            return -1;
        }
        memcpy(out, buf, (size_t) m);
    }
    return m;
}

static EVP_PKEY *
from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM    *params;
    EVP_PKEY_CTX  *ctx;
    EVP_PKEY      *key = NULL;

    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return key;
}

static EVP_PKEY *
rsa_key(json_t *jwk)
{
    unsigned char   n[1025], e[16];
    int             nl, el;
    BIGNUM         *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld;
    EVP_PKEY       *key = NULL;

    nl = b64url_member(jwk, "n", n, sizeof(n));
    el = b64url_member(jwk, "e", e, sizeof(e));
    if (nl < 0 || el < 0) {
        return NULL;
    }
    bn = BN_bin2bn(n, nl, NULL);
    be = BN_bin2bn(e, el, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (bn && be && bld
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
    {
        key = from_params("RSA", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return key;
}

static EVP_PKEY *
ec_key(json_t *jwk)
{
    unsigned char   pt[65];
    OSSL_PARAM_BLD *bld;
    EVP_PKEY       *key = NULL;
    EVP_PKEY_CTX   *check;

    pt[0] = 0x04;               /* uncompressed: x then y */
    if (b64url_member(jwk, "x", pt + 1, 32) != 32
        || b64url_member(jwk, "y", pt + 33, 32) != 32)
    {
        return NULL;
    }
    bld = OSSL_PARAM_BLD_new();
    if (bld
        && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                           "prime256v1", 0) == 1
        && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt,
                                            sizeof(pt)) == 1)
    {
        key = from_params("EC", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    if (key == NULL) {
        return NULL;
    }
    /* a point off the curve would be an invalid-curve attack's key */
    check = EVP_PKEY_CTX_new(key, NULL);
    if (check == NULL || EVP_PKEY_public_check(check) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    EVP_PKEY_CTX_free(check);
    return key;
}

int
jwk_from_json(json_t *jwk, struct jwk_key *k, char *err, size_t errlen)
{
    const char  *kty, *alg, *use, *kid, *crv;
    EVP_PKEY    *key;
    int          rc;

    kty = json_string_value(json_object_get(jwk, "kty"));
    alg = json_string_value(json_object_get(jwk, "alg"));
    use = json_string_value(json_object_get(jwk, "use"));
    kid = json_string_value(json_object_get(jwk, "kid"));
    crv = json_string_value(json_object_get(jwk, "crv"));

    if (!json_is_object(jwk) || kty == NULL) {
        snprintf(err, errlen, "a key without \"kty\"");
        return -1;
    }
    if (kid == NULL || !tenant_jwk_kid_valid(kid, strlen(kid))) {
        snprintf(err, errlen, "a key without a usable \"kid\" (1 to 128 "
                 "printable characters)");
        return -1;
    }
    snprintf(k->kid, sizeof(k->kid), "%s", kid);

    if (use && strcmp(use, "sig") != 0) {
        snprintf(err, errlen, "key %s is for \"%s\", not signatures", kid,
                 use);
        return PROV_NONE;
    }
    if (strcmp(kty, "RSA") == 0 && (alg == NULL || strcmp(alg, "RS256") == 0))
    {
        key = rsa_key(jwk);
    } else if (strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0
               && (alg == NULL || strcmp(alg, "ES256") == 0))
    {
        key = ec_key(jwk);
    } else {
        snprintf(err, errlen, "key %s is %s%s%s: the edge verifies RS256 and "
                 "ES256", kid, kty, alg ? " " : "", alg ? alg : "");
        return PROV_NONE;
    }
    if (key == NULL) {
        ERR_clear_error();
        snprintf(err, errlen, "key %s: its %s members are malformed", kid,
                 kty);
        return -1;
    }
    rc = tenant_jwk_from_key(key, &k->k, err, errlen);
    EVP_PKEY_free(key);
    return rc;
}
