
/*
 * The edge trusts the registry's DER and only ever parses it, so what is
 * too weak to trust (RSA under 2048 bits) or what it does not verify
 * (another curve or type) is refused here, with the reason.
 */


#include "tenant_jwk.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>


int
tenant_jwk_kid_valid(const char *kid, size_t len)
{
    size_t  i;

    if (len == 0 || len > TENANT_JWK_KID_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (kid[i] < '!' || kid[i] > '~') {
            return 0;
        }
    }

    return 1;
}


int
tenant_jwk_from_key(EVP_PKEY *key, tenant_jwk_t *k, char *err, size_t errlen)
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
                                           group, sizeof(group), &glen)
            != 1
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
tenant_jwk_from_pem(const char *pem, size_t len, tenant_jwk_t *k, char *err,
    size_t errlen)
{
    int        rc;
    BIO       *bio;
    X509      *cert;
    EVP_PKEY  *key;

    if (len > TENANT_JWK_PEM_MAX) {
        snprintf(err, errlen, "longer than a public key (%d bytes at most)",
                 TENANT_JWK_PEM_MAX);
        return -1;
    }

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

    /* what the parsers left must not be taken for a later TLS error */
    ERR_clear_error();

    if (key == NULL) {
        snprintf(err, errlen, "no PEM public key (BEGIN PUBLIC KEY) or "
                 "certificate");
        return -1;
    }

    rc = tenant_jwk_from_key(key, k, err, errlen);
    EVP_PKEY_free(key);

    return rc;
}
