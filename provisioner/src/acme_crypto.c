#define _GNU_SOURCE

#include "acme_crypto.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
acme_b64url(char *dst, size_t size, const unsigned char *src, size_t n)
{
    static const char  abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789-_";
    size_t             i, o = 0;
    unsigned long      v;

    if (size < (n + 2) / 3 * 4 + 1) {
        return -1;
    }
    for (i = 0; i + 2 < n; i += 3) {
        v = (unsigned long) src[i] << 16 | src[i + 1] << 8 | src[i + 2];
        dst[o++] = abc[v >> 18 & 63];
        dst[o++] = abc[v >> 12 & 63];
        dst[o++] = abc[v >> 6 & 63];
        dst[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        v = (unsigned long) src[i] << 16;
        dst[o++] = abc[v >> 18 & 63];
        dst[o++] = abc[v >> 12 & 63];
    } else if (n - i == 2) {
        v = (unsigned long) src[i] << 16 | src[i + 1] << 8;
        dst[o++] = abc[v >> 18 & 63];
        dst[o++] = abc[v >> 12 & 63];
        dst[o++] = abc[v >> 6 & 63];
    }
    dst[o] = '\0';
    return (int) o;
}

/* a malloc'd base64url copy of n bytes */
static char *
b64url_dup(const unsigned char *src, size_t n)
{
    size_t  size = (n + 2) / 3 * 4 + 1;
    char   *out = malloc(size);

    if (out != NULL && acme_b64url(out, size, src, n) < 0) {
        free(out);
        return NULL;
    }
    return out;
}

EVP_PKEY *
acme_key_new(void)
{
    return EVP_EC_gen("P-256");
}

char *
acme_key_pem(EVP_PKEY *key, size_t *len)
{
    BIO   *bio = BIO_new(BIO_s_mem());
    char  *data, *out = NULL;
    long   n;

    if (bio == NULL) {
        return NULL;
    }
    if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1
        && (n = BIO_get_mem_data(bio, &data)) > 0
        && (out = malloc(n + 1)) != NULL)
    {
        memcpy(out, data, n);
        out[n] = '\0';
        *len = n;
        OPENSSL_cleanse(data, n);
    }
    BIO_free(bio);
    return out;
}

EVP_PKEY *
acme_key_from_pem(const char *pem, size_t len)
{
    BIO       *bio = BIO_new_mem_buf(pem, (int) len);
    EVP_PKEY  *key;

    if (bio == NULL) {
        return NULL;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (key != NULL && !EVP_PKEY_is_a(key, "EC")) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    return key;
}

/* one affine coordinate of the public point, base64url */
static int
coordinate(EVP_PKEY *key, const char *which, char out[48])
{
    BIGNUM         *bn = NULL;
    unsigned char   bin[32];
    int             rc = -1;

    if (EVP_PKEY_get_bn_param(key, which, &bn) == 1
        && BN_bn2binpad(bn, bin, sizeof(bin)) == sizeof(bin)
        && acme_b64url(out, 48, bin, sizeof(bin)) > 0)
    {
        rc = 0;
    }
    BN_free(bn);
    return rc;
}

json_t *
acme_jwk(EVP_PKEY *key)
{
    char  x[48], y[48];

    if (coordinate(key, OSSL_PKEY_PARAM_EC_PUB_X, x) != 0
        || coordinate(key, OSSL_PKEY_PARAM_EC_PUB_Y, y) != 0)
    {
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:s}", "crv", "P-256", "kty", "EC",
                     "x", x, "y", y);
}

static int
sha256_b64url(const unsigned char *data, size_t len, char out[64])
{
    unsigned char  md[SHA256_DIGEST_LENGTH];

    if (SHA256(data, len, md) == NULL) {
        return -1;
    }
    return acme_b64url(out, 64, md, sizeof(md)) < 0 ? -1 : 0;
}

int
acme_thumbprint(EVP_PKEY *key, char out[64])
{
    json_t  *jwk = acme_jwk(key);
    char    *s;
    int      rc = -1;

    if (jwk == NULL) {
        return -1;
    }
    /* RFC 7638: the required members, sorted, no whitespace */
    s = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
    if (s != NULL) {
        rc = sha256_b64url((const unsigned char *) s, strlen(s), out);
        free(s);
    }
    json_decref(jwk);
    return rc;
}

int
acme_txt_digest(const char *s, char out[64])
{
    return sha256_b64url((const unsigned char *) s, strlen(s), out);
}

/* ES256: the raw r || s JWS wants, not the DER OpenSSL gives (RFC 7518 §3.4) */
static char *
sign_es256(EVP_PKEY *key, const char *input)
{
    EVP_MD_CTX           *ctx = EVP_MD_CTX_new();
    unsigned char        *der = NULL, raw[64];
    const unsigned char  *p;
    const BIGNUM         *r, *s;
    ECDSA_SIG            *sig = NULL;
    size_t                len = 0;
    char                 *out = NULL;

    if (ctx == NULL
        || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1
        || EVP_DigestSign(ctx, NULL, &len, (const unsigned char *) input,
                          strlen(input)) != 1
        || (der = malloc(len)) == NULL
        || EVP_DigestSign(ctx, der, &len, (const unsigned char *) input,
                          strlen(input)) != 1)
    {
        goto done;
    }
    p = der;
    sig = d2i_ECDSA_SIG(NULL, &p, (long) len);
    if (sig == NULL) {
        goto done;
    }
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32) {
        goto done;
    }
    out = b64url_dup(raw, sizeof(raw));

done:

    ECDSA_SIG_free(sig);
    free(der);
    EVP_MD_CTX_free(ctx);
    return out;
}

char *
acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
         const char *payload)
{
    json_t  *header, *body = NULL;
    char    *h = NULL, *hb = NULL, *pb = NULL, *input = NULL, *sig = NULL;
    char    *out = NULL;

    header = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "nonce", nonce,
                       "url", url);
    if (header == NULL) {
        return NULL;
    }
    /* the account's URL once it has one; its public key until then */
    if (kid != NULL && kid[0] != '\0') {
        json_object_set_new(header, "kid", json_string(kid));
    } else {
        json_object_set_new(header, "jwk", acme_jwk(key));
    }

    h = json_dumps(header, JSON_COMPACT);
    if (h == NULL
        || (hb = b64url_dup((const unsigned char *) h, strlen(h))) == NULL
        || (pb = b64url_dup((const unsigned char *) payload,
                            strlen(payload))) == NULL
        || asprintf(&input, "%s.%s", hb, pb) < 0
        || (sig = sign_es256(key, input)) == NULL)
    {
        goto done;
    }

    body = json_pack("{s:s, s:s, s:s}", "protected", hb, "payload", pb,
                     "signature", sig);
    if (body != NULL) {
        out = json_dumps(body, JSON_COMPACT);
    }

done:

    json_decref(header);
    json_decref(body);
    free(h);
    free(hb);
    free(pb);
    free(input);
    free(sig);
    return out;
}

char *
acme_csr(EVP_PKEY *key, const char *host)
{
    X509_REQ                  *req = X509_REQ_new();
    X509_NAME                 *name = NULL;
    X509_EXTENSION            *san = NULL;
    STACK_OF(X509_EXTENSION)  *exts = NULL;
    unsigned char             *der = NULL;
    char                       alt[300], *out = NULL;
    int                        len;

    if (req == NULL || X509_REQ_set_version(req, 0) != 1) {
        goto done;
    }

    /* a common name longer than 64 bytes is not allowed: the SAN carries it */
    name = X509_NAME_new();
    if (name == NULL
        || (strlen(host) <= 64
            && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                          (const unsigned char *) host, -1,
                                          -1, 0) != 1)
        || X509_REQ_set_subject_name(req, name) != 1)
    {
        goto done;
    }

    /* host passed the registry's name rules: no comma can add a name */
    snprintf(alt, sizeof(alt), "DNS:%s", host);
    san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, alt);
    exts = sk_X509_EXTENSION_new_null();
    if (san == NULL || exts == NULL || !sk_X509_EXTENSION_push(exts, san)
        || X509_REQ_add_extensions(req, exts) != 1
        || X509_REQ_set_pubkey(req, key) != 1
        || X509_REQ_sign(req, key, EVP_sha256()) <= 0
        || (len = i2d_X509_REQ(req, &der)) <= 0)
    {
        goto done;
    }
    out = b64url_dup(der, len);

done:

    OPENSSL_free(der);
    if (exts != NULL) {
        sk_X509_EXTENSION_free(exts);
    }
    X509_EXTENSION_free(san);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return out;
}
