#define _POSIX_C_SOURCE 200809L

/*
 * Keys are checked here, once, by the provisioner: the edge trusts the
 * registry's DER and only ever parses it. A key too weak to trust (RSA
 * under 2048 bits), a curve the edge does not verify, or an EC point off
 * its curve is refused with the reason, not stored.
 */

#include "jwk.h"
#include "prov.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
jwk_kid_valid(const char *kid)
{
    size_t  n = strlen(kid), i;

    if (n == 0 || n > 128) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (kid[i] < '!' || kid[i] > '~') {
            return 0;
        }
    }
    return 1;
}

/* the algorithm the edge verifies with key, and its DER into k */
static int
key_to_der(EVP_PKEY *key, struct jwk_key *k, char *err, size_t errlen)
{
    unsigned char  *p;
    char            group[64];
    size_t          glen = 0;
    int             n, bits;

    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        bits = EVP_PKEY_get_bits(key);
        if (bits < 2048 || bits > 8192) {
            snprintf(err, errlen, "an RSA key of %d bits: 2048 to 8192 are "
                     "taken", bits);
            return -1;
        }
        k->alg = "RS256";
        break;
    case EVP_PKEY_EC:
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), &glen) != 1
            || strcmp(group, "prime256v1") != 0)
        {
            snprintf(err, errlen, "an EC key on curve %s: only P-256 "
                     "(ES256) is taken", glen ? group : "(unknown)");
            return -1;
        }
        k->alg = "ES256";
        break;
    default:
        snprintf(err, errlen, "a %s key: RSA (RS256) or EC P-256 (ES256) "
                 "are taken", OBJ_nid2sn(EVP_PKEY_get_base_id(key)));
        return -1;
    }

    n = i2d_PUBKEY(key, NULL);
    if (n <= 0 || (size_t) n > sizeof(k->der)) {
        snprintf(err, errlen, "the key does not encode in %zu bytes",
                 sizeof(k->der));
        return -1;
    }
    p = k->der;
    if (i2d_PUBKEY(key, &p) != n) {
        snprintf(err, errlen, "the key does not encode");
        return -1;
    }
    k->der_len = (size_t) n;
    return 0;
}

int
jwk_from_pem(const char *pem, size_t len, struct jwk_key *k, char *err,
             size_t errlen)
{
    BIO       *bio;
    EVP_PKEY  *key = NULL;
    X509      *cert;
    int        rc;

    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (key == NULL) {
        /* or the issuer's certificate: its key */
        (void) BIO_reset(bio);
        cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (cert != NULL) {
            key = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    BIO_free(bio);
    if (key == NULL) {
        snprintf(err, errlen, "no PEM public key (BEGIN PUBLIC KEY) or "
                 "certificate in the file");
        return -1;
    }
    rc = key_to_der(key, k, err, errlen);
    EVP_PKEY_free(key);
    return rc;
}

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
    if (kid == NULL || !jwk_kid_valid(kid)) {
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
        snprintf(err, errlen, "key %s: its %s members are malformed", kid,
                 kty);
        return -1;
    }
    rc = key_to_der(key, k, err, errlen);
    EVP_PKEY_free(key);
    return rc;
}
