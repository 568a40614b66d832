
/*
 * Unit tests for what ACME asks of the provisioner's keys
 * (provisioner/src/acme_crypto.c): base64url against RFC 4648's vectors,
 * a JWS whose ES256 signature OpenSSL verifies over exactly the signing
 * input (RFC 7515), a JWK thumbprint computed the way RFC 7638 says, and a
 * CSR naming the host and signed by the key; prints TAP.
 *
 * sources: provisioner/src/acme_crypto.c
 * libs: -lcrypto -ljansson
 */


#define _GNU_SOURCE

#include "acme_crypto.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int  ntests;


static void
ok(int cond, const char *what)
{
    ntests++;
    printf("%s %d - %s\n", cond ? "ok" : "not ok", ntests, what);
}


/* base64url back to bytes (the test's own, independent decoder) */
static size_t
unb64(const char *s, unsigned char *out)
{
    static const char  abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789-_";
    unsigned long      v = 0;
    size_t             n = 0, bits = 0;
    const char        *p;

    for (; *s; s++) {
        p = strchr(abc, *s);
        if (p == NULL) {
            return (size_t) -1;
        }
        v = v << 6 | (unsigned long) (p - abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char) (v >> bits);
        }
    }
    return n;
}


static void
test_b64url(void)
{
    const char  *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    const char  *want[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE",
                            "Zm9vYmFy" };
    unsigned char bin[] = { 0xfb, 0xff, 0xfe };
    char         out[32];
    size_t       i;
    int          all = 1;

    for (i = 0; i < 7; i++) {
        acme_b64url(out, sizeof(out), (const unsigned char *) in[i],
                    strlen(in[i]));
        all &= strcmp(out, want[i]) == 0;
    }
    ok(all, "base64url: RFC 4648's vectors, no padding");
    acme_b64url(out, sizeof(out), bin, 3);
    ok(strcmp(out, "-__-") == 0, "base64url: '-' and '_' for 62 and 63");
    ok(acme_b64url(out, 4, (const unsigned char *) "foo", 3) == -1,
       "base64url: a buffer too small is refused");
}


static void
test_jws(EVP_PKEY *key)
{
    json_t               *jws, *hdr;
    char                 *body, *input;
    const char           *p, *pl, *sg;
    unsigned char         raw[128], hb[512], *der = NULL;
    size_t                n;
    ECDSA_SIG            *sig;
    EVP_MD_CTX           *ctx;
    int                   good, dlen;

    body = acme_jws(key, NULL, "nonce-1", "https://ca.example/new-acct",
                    "{\"a\":1}");
    jws = body ? json_loads(body, 0, NULL) : NULL;
    ok(jws != NULL, "JWS: a JSON object");

    p = json_string_value(json_object_get(jws, "protected"));
    pl = json_string_value(json_object_get(jws, "payload"));
    sg = json_string_value(json_object_get(jws, "signature"));
    ok(p && pl && sg, "JWS: protected, payload, signature");

    n = unb64(p, hb);
    hb[n] = '\0';
    hdr = json_loads((char *) hb, 0, NULL);
    ok(hdr && strcmp(json_string_value(json_object_get(hdr, "alg")), "ES256") == 0
       && strcmp(json_string_value(json_object_get(hdr, "nonce")), "nonce-1") == 0
       && strcmp(json_string_value(json_object_get(hdr, "url")),
                 "https://ca.example/new-acct") == 0
       && json_object_get(hdr, "jwk") != NULL
       && json_object_get(hdr, "kid") == NULL,
       "JWS: header alg, nonce, url, and the jwk before there is a kid");

    ok(unb64(sg, raw) == 64, "JWS: the signature is r || s, 64 bytes");

    /* verify over "protected.payload" with the key, as a CA does */
    sig = ECDSA_SIG_new();
    ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
    dlen = i2d_ECDSA_SIG(sig, &der);
    if (asprintf(&input, "%s.%s", p, pl) < 0) {
        input = NULL;
    }
    ctx = EVP_MD_CTX_new();
    good = input && dlen > 0
           && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1
           && EVP_DigestVerify(ctx, der, dlen, (unsigned char *) input,
                               strlen(input)) == 1;
    ok(good, "JWS: the ES256 signature verifies over the signing input");
    if (input) {
        input[0] ^= 1;
        ok(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1
           && EVP_DigestVerify(ctx, der, dlen, (unsigned char *) input,
                               strlen(input)) != 1,
           "JWS: ... and not over an altered one");
    }
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    free(input);
    json_decref(hdr);
    json_decref(jws);
    free(body);

    body = acme_jws(key, "https://ca.example/acct/7", "n2",
                    "https://ca.example/order/1", "");
    jws = body ? json_loads(body, 0, NULL) : NULL;
    p = json_string_value(json_object_get(jws, "protected"));
    n = p ? unb64(p, hb) : 0;
    hb[n] = '\0';
    hdr = json_loads((char *) hb, 0, NULL);
    ok(hdr && json_object_get(hdr, "jwk") == NULL
       && strcmp(json_string_value(json_object_get(hdr, "kid")),
                 "https://ca.example/acct/7") == 0
       && strcmp(json_string_value(json_object_get(jws, "payload")), "") == 0,
       "JWS: with an account, kid and no jwk; POST-as-GET has an empty payload");
    json_decref(hdr);
    json_decref(jws);
    free(body);
}


static void
test_thumbprint(EVP_PKEY *key)
{
    json_t         *jwk = acme_jwk(key);
    char            canon[512], tp[64], want[64];
    unsigned char   md[SHA256_DIGEST_LENGTH];

    /* RFC 7638 §3.2: the required members in lexicographic order, no
     * whitespace */
    snprintf(canon, sizeof(canon),
             "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
             json_string_value(json_object_get(jwk, "x")),
             json_string_value(json_object_get(jwk, "y")));
    SHA256((unsigned char *) canon, strlen(canon), md);
    acme_b64url(want, sizeof(want), md, sizeof(md));

    ok(acme_thumbprint(key, tp) == 0 && strcmp(tp, want) == 0
       && strlen(tp) == 43, "thumbprint: SHA-256 of the canonical JWK");
    ok(strlen(json_string_value(json_object_get(jwk, "x"))) == 43,
       "JWK: coordinates are 32 bytes, padded");
    json_decref(jwk);
}


static void
test_csr(EVP_PKEY *key)
{
    char                   *b64 = acme_csr(key, "shop.example.com");
    unsigned char           der[2048];
    const unsigned char    *p = der;
    size_t                  n;
    X509_REQ               *req = NULL;
    STACK_OF(X509_EXTENSION) *exts;
    GENERAL_NAMES          *names = NULL;
    int                     i, found = 0;

    n = b64 ? unb64(b64, der) : 0;
    if (n > 0 && n < sizeof(der)) {
        req = d2i_X509_REQ(NULL, &p, (long) n);
    }
    ok(req != NULL, "CSR: DER, base64url");
    ok(req && X509_REQ_verify(req, key) == 1, "CSR: signed by the certificate's key");

    exts = req ? X509_REQ_get_extensions(req) : NULL;
    for (i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);

        if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name) {
            names = X509V3_EXT_d2i(e);
        }
    }
    for (i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);

        found += g->type == GEN_DNS
                 && strcmp((char *) ASN1_STRING_get0_data(g->d.dNSName),
                           "shop.example.com") == 0;
    }
    ok(found == 1 && sk_GENERAL_NAME_num(names) == 1,
       "CSR: one subjectAltName, the host");

    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    free(b64);
}


int
main(void)
{
    EVP_PKEY  *key = acme_key_new(), *again;
    char      *pem;
    size_t     len;

    test_b64url();

    ok(key != NULL, "a P-256 key is made");
    pem = acme_key_pem(key, &len);
    again = pem ? acme_key_from_pem(pem, len) : NULL;
    ok(again != NULL && EVP_PKEY_eq(key, again) == 1,
       "the key survives PEM and back (as the registry keeps it)");
    ok(acme_key_from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n", 32) == NULL,
       "a broken PEM is refused");

    test_jws(key);
    test_thumbprint(key);
    test_csr(key);

    EVP_PKEY_free(again);
    EVP_PKEY_free(key);
    free(pem);
    printf("1..%d\n", ntests);
    return 0;
}
