
/*
 * OpenSSL does the parsing and the checks; this file decides what an edge
 * accepts: ECDSA P-256 (preferred) or RSA of 2048 bits or more, a leaf that
 * covers the host and is valid now, each certificate issued by the next.
 */


#define _GNU_SOURCE

#include "tenant_cert.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int tenant_cert_key_ok(EVP_PKEY *key, char *type, size_t len);
static void tenant_cert_names(X509 *x, char *out, size_t len);
static time_t tenant_cert_time(const ASN1_TIME *t);


int
tenant_cert_check(const char *chain_pem, size_t chain_len,
    const char *key_pem, size_t key_len, const char *host, time_t now,
    tenant_cert_t *out, char *err, size_t errlen)
{
    int             i, n, len, rc;
    BIO            *bio;
    X509           *x, *chain[TENANT_CERT_MAX_CHAIN];
    EVP_PKEY       *key;
    unsigned char  *p;
    char            probe[256];

    memset(out, 0, sizeof(*out));
    n = 0;
    key = NULL;
    rc = -1;

    if (chain_len == 0 || chain_len > TENANT_CERT_MAX_PEM
        || key_len == 0 || key_len > TENANT_CERT_MAX_PEM)
    {
        snprintf(err, errlen, "certificate and key: PEM text, 1-%d bytes "
                 "each", TENANT_CERT_MAX_PEM);
        return -1;
    }

    bio = BIO_new_mem_buf(chain_pem, (int) chain_len);
    if (bio == NULL) {
        snprintf(err, errlen, "certificate: out of memory");
        return -1;
    }

    while (n < TENANT_CERT_MAX_CHAIN
           && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
    {
        chain[n++] = x;
    }

    BIO_free(bio);

    if (n == 0) {
        snprintf(err, errlen, "certificate: no PEM certificate (send the "
                 "leaf first, then its intermediates, each \"-----BEGIN "
                 "CERTIFICATE-----\")");
        goto done;
    }

    bio = BIO_new_mem_buf(key_pem, (int) key_len);
    key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);

    if (key == NULL) {
        snprintf(err, errlen, "key: not a PEM private key without a "
                 "passphrase (\"-----BEGIN PRIVATE KEY-----\")");
        goto done;
    }

    if (tenant_cert_key_ok(key, out->key_type, sizeof(out->key_type)) != 0) {
        snprintf(err, errlen, "key: %s is not accepted: use ECDSA P-256 or "
                 "RSA of 2048 bits or more", out->key_type);
        goto done;
    }

    if (X509_check_private_key(chain[0], key) != 1) {
        snprintf(err, errlen, "key: does not match the certificate (the "
                 "first certificate must be the leaf)");
        goto done;
    }

    tenant_cert_names(chain[0], out->names, sizeof(out->names));

    /* "*.parent": the certificate must cover any one label under it */
    if (host[0] == '*' && host[1] == '.') {
        snprintf(probe, sizeof(probe), "wildcard-check-7f3a%.230s", host + 1);
    } else {
        snprintf(probe, sizeof(probe), "%.250s", host);
    }

    if (X509_check_host(chain[0], probe, strlen(probe), 0, NULL) != 1) {
        snprintf(err, errlen, "certificate: does not cover %s (it covers: "
                 "%s)", host, out->names[0] ? out->names : "no DNS name");
        goto done;
    }

    out->not_before = tenant_cert_time(X509_get0_notBefore(chain[0]));
    out->not_after = tenant_cert_time(X509_get0_notAfter(chain[0]));

    if (out->not_before == (time_t) -1 || out->not_after == (time_t) -1) {
        snprintf(err, errlen, "certificate: unreadable validity dates");
        goto done;
    }

    if (out->not_after <= now) {
        snprintf(err, errlen, "certificate: expired (not after %ld, now "
                 "%ld): send a current one", (long) out->not_after,
                 (long) now);
        goto done;
    }

    if (out->not_before > now) {
        snprintf(err, errlen, "certificate: not valid yet (not before %ld)",
                 (long) out->not_before);
        goto done;
    }

    for (i = 0; i + 1 < n; i++) {
        if (X509_check_issued(chain[i + 1], chain[i]) != X509_V_OK) {
            snprintf(err, errlen, "certificate: chain out of order: "
                     "certificate %d did not issue certificate %d (send the "
                     "leaf, then each issuer in turn)", i + 2, i + 1);
            goto done;
        }
    }

    X509_NAME_oneline(X509_get_issuer_name(chain[0]), out->issuer,
                      sizeof(out->issuer));

    for (i = 0, len = 0; i < n; i++) {
        len += i2d_X509(chain[i], NULL);
    }

    out->chain = malloc(len);

    len = i2d_PrivateKey(key, NULL);
    out->key = len > 0 ? malloc(len) : NULL;

    if (out->chain == NULL || out->key == NULL) {
        snprintf(err, errlen, "certificate: out of memory");
        goto done;
    }

    p = out->key;
    out->key_len = (size_t) i2d_PrivateKey(key, &p);

    p = out->chain;

    for (i = 0; i < n; i++) {
        i2d_X509(chain[i], &p);
    }

    out->chain_len = (size_t) (p - out->chain);
    rc = 0;

done:

    /*
     * Reading PEM to its end, and every refusal, leave errors on this
     * thread's queue: the next TLS handshake would find them there.
     */
    ERR_clear_error();

    for (i = 0; i < n; i++) {
        X509_free(chain[i]);
    }

    EVP_PKEY_free(key);

    if (rc != 0) {
        tenant_cert_free(out);
    }

    return rc;
}


void
tenant_cert_free(tenant_cert_t *c)
{
    if (c->key) {
        explicit_bzero(c->key, c->key_len);
    }

    free(c->key);
    free(c->chain);

    c->key = NULL;
    c->chain = NULL;
}


static int
tenant_cert_key_ok(EVP_PKEY *key, char *type, size_t len)
{
    int   bits;
    char  curve[64];

    bits = EVP_PKEY_get_bits(key);

    switch (EVP_PKEY_get_base_id(key)) {

    case EVP_PKEY_EC:
        if (EVP_PKEY_get_utf8_string_param(key, "group", curve,
                                           sizeof(curve), NULL) != 1)
        {
            curve[0] = '\0';
        }

        if (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0) {
            snprintf(type, len, "ECDSA P-256");
            return 0;
        }

        snprintf(type, len, "ECDSA %.8s", curve[0] ? curve : "?");
        return -1;

    case EVP_PKEY_RSA:
        snprintf(type, len, "RSA %d", bits);
        return bits >= 2048 ? 0 : -1;
    }

    snprintf(type, len, "this key type");
    return -1;
}


static void
tenant_cert_names(X509 *x, char *out, size_t len)
{
    int                     i, n;
    size_t                  used;
    GENERAL_NAME           *g;
    GENERAL_NAMES          *names;
    const unsigned char    *s;

    out[0] = '\0';
    used = 0;

    names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (names == NULL) {
        return;
    }

    n = sk_GENERAL_NAME_num(names);

    for (i = 0; i < n; i++) {
        g = sk_GENERAL_NAME_value(names, i);

        if (g->type != GEN_DNS) {
            continue;
        }

        s = ASN1_STRING_get0_data(g->d.dNSName);

        used += snprintf(out + used, used < len ? len - used : 0, "%s%.*s",
                         used ? "," : "", ASN1_STRING_length(g->d.dNSName),
                         (const char *) s);
        if (used >= len) {
            out[len - 1] = '\0';
            break;
        }
    }

    GENERAL_NAMES_free(names);
}


static time_t
tenant_cert_time(const ASN1_TIME *t)
{
    struct tm  tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        return (time_t) -1;
    }

    return timegm(&tm);
}
