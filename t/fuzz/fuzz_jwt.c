
/*
 * libFuzzer target: tenant_jwt's token parsing, signature check and claims
 * (ngx_http_tenant_jwt_token.c), each input a token as it would come in
 * Authorization: Bearer.  Invariants: a token that parses has three
 * non-empty parts and an algorithm the edge verifies; no key verifies a
 * token of another algorithm; claims that pass are not expired.
 *
 * The file links no nginx code: the pool and nginx's base64url decoder are
 * stood in for below, the decoder as nginx's is documented to behave
 * (RFC 4648 §5 alphabet, padding ends the input, a length of 4n+1 is an
 * error).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <openssl/evp.h>
#include "ngx_http_tenant_jwt_token.h"
#include "ngx_http_tenant_jwt_keys.h"


#define POOL_MAX  64

static void        *allocated[POOL_MAX];
static ngx_uint_t   nallocated;


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    void  *p;

    if (nallocated == POOL_MAX) {
        return NULL;
    }

    p = malloc(size ? size : 1);
    allocated[nallocated++] = p;

    return p;
}


ngx_int_t
ngx_decode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    size_t   i, n;
    u_char   c, v, *d;
    uint32_t acc;
    int      bits;

    for (n = 0; n < src->len && src->data[n] != '='; n++) {
        /* counted below */
    }

    if (n % 4 == 1) {
        return NGX_ERROR;
    }

    d = dst->data;
    acc = 0;
    bits = 0;

    for (i = 0; i < n; i++) {
        c = src->data[i];

        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';
        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;
        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;
        } else if (c == '-') {
            v = 62;
        } else if (c == '_') {
            v = 63;
        } else {
            return NGX_ERROR;
        }

        acc = (acc << 6) | v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            *d++ = (u_char) (acc >> bits);
        }
    }

    dst->len = d - dst->data;

    return NGX_OK;
}


static EVP_PKEY  *ec_key, *rsa_key;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);

    return (ec_key && rsa_key) ? 0 : -1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char                    *why;
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    ngx_str_t                      raw;
    ngx_http_tenant_jwt_token_t    tok;
    ngx_http_tenant_jwt_rules_t    rules;
    ngx_http_tenant_jwt_claims_t   claims;

    if (size > 8192) {
        return 0;
    }

    raw.data = (u_char *) data;
    raw.len = size;

    ngx_str_set(&rules.issuer, "https://id.example.test/");
    ngx_str_set(&rules.audience, "shop");
    ngx_str_set(&rules.claim, "tenant_id");
    ngx_str_set(&rules.approved, "email");
    rules.leeway = 30;

    rc = ngx_http_tenant_jwt_token_parse(NULL, &raw, &tok, &why);

    if (rc == NGX_OK) {
        if ((tok.alg != NGX_HTTP_TENANT_JWT_RS256
             && tok.alg != NGX_HTTP_TENANT_JWT_ES256)
            || tok.signed_part.len == 0 || tok.signed_part.len >= size
            || tok.signature.len == 0 || tok.payload_b64.len == 0)
        {
            __builtin_trap();
        }

        /* a key never verifies a token of another algorithm */
        if (tok.alg == NGX_HTTP_TENANT_JWT_ES256
            && ngx_http_tenant_jwt_token_verify(&tok, rsa_key,
                                                NGX_HTTP_TENANT_JWT_RS256)
               != NGX_DECLINED)
        {
            __builtin_trap();
        }

        (void) ngx_http_tenant_jwt_token_verify(&tok, ec_key,
                                                NGX_HTTP_TENANT_JWT_ES256);
        (void) ngx_http_tenant_jwt_token_verify(&tok, rsa_key,
                                                NGX_HTTP_TENANT_JWT_RS256);

        /* the claims are checked after the signature, but on their own */
        if (ngx_http_tenant_jwt_token_claims(NULL, &tok, &rules, 1700000000,
                                             &claims, &why)
            == NGX_OK
            && claims.exp + rules.leeway < 1700000000)
        {
            __builtin_trap();
        }

    } else if (why == NULL) {
        __builtin_trap();
    }

    for (i = 0; i < nallocated; i++) {
        free(allocated[i]);
    }

    nallocated = 0;

    return 0;
}
