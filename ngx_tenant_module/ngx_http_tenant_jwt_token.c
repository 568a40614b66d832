
/*
 * Only what RFC 8725 (JWT best current practices) leaves standing: the
 * algorithm comes from the key, never from the token (a token's "alg"
 * must equal its key's, so "none" and HS256 keyed with a public key match
 * nothing); exactly three unpadded base64url parts; no duplicate JSON
 * members; "crit" refused since no extension is understood; "exp"
 * required, so no token is good for ever.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <openssl/ecdsa.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include "ngx_http_tenant_jwt_token.h"
#include "ngx_http_tenant_jwt_keys.h"


#define NGX_HTTP_TENANT_JWT_HEADER_MAX  1024


static ngx_int_t ngx_http_tenant_jwt_b64url(ngx_pool_t *pool, u_char *p,
    size_t len, ngx_str_t *out);
static json_t *ngx_http_tenant_jwt_json(ngx_pool_t *pool, u_char *p,
    size_t len);
static ngx_int_t ngx_http_tenant_jwt_time(json_t *v, time_t *t);
static ngx_int_t ngx_http_tenant_jwt_string(ngx_pool_t *pool, json_t *v,
    ngx_str_t *out);
static ngx_int_t ngx_http_tenant_jwt_audience(json_t *aud, ngx_str_t *want);


ngx_int_t
ngx_http_tenant_jwt_token_parse(ngx_pool_t *pool, ngx_str_t *raw,
    ngx_http_tenant_jwt_token_t *tok, const char **why)
{
    u_char      *d1, *d2, *last;
    json_t      *header, *alg, *kid;
    const char  *name;

    last = raw->data + raw->len;

    d1 = ngx_strlchr(raw->data, last, '.');
    d2 = d1 ? ngx_strlchr(d1 + 1, last, '.') : NULL;

    if (d2 == NULL || ngx_strlchr(d2 + 1, last, '.') != NULL) {
        *why = "the token is not three base64url parts";
        return NGX_DECLINED;
    }

    if (d1 == raw->data || d2 == d1 + 1) {
        *why = "the token has an empty part";
        return NGX_DECLINED;
    }

    if (d2 + 1 == last) {
        *why = "the token is not signed";
        return NGX_DECLINED;
    }

    if ((size_t) (d1 - raw->data) > NGX_HTTP_TENANT_JWT_HEADER_MAX * 4 / 3 + 4)
    {
        *why = "the token's header is too long";
        return NGX_DECLINED;
    }

    tok->signed_part.data = raw->data;
    tok->signed_part.len = d2 - raw->data;
    tok->payload_b64.data = d1 + 1;
    tok->payload_b64.len = d2 - d1 - 1;

    if (ngx_http_tenant_jwt_b64url(pool, d2 + 1, last - d2 - 1,
                                   &tok->signature)
        != NGX_OK)
    {
        *why = "the token's signature is not base64url";
        return NGX_DECLINED;
    }

    header = ngx_http_tenant_jwt_json(pool, raw->data, d1 - raw->data);

    if (header == NULL) {
        *why = "the token's header is not a JSON object";
        return NGX_DECLINED;
    }

    *why = NULL;

    alg = json_object_get(header, "alg");
    name = json_string_value(alg);

    if (name && ngx_strcmp(name, "RS256") == 0) {
        tok->alg = NGX_HTTP_TENANT_JWT_RS256;

    } else if (name && ngx_strcmp(name, "ES256") == 0) {
        tok->alg = NGX_HTTP_TENANT_JWT_ES256;

    } else {
        *why = "the token's algorithm is not RS256 or ES256";
    }

    if (*why == NULL && json_object_get(header, "crit") != NULL) {
        *why = "the token has critical extensions (\"crit\")";
    }

    ngx_str_null(&tok->kid);
    kid = json_object_get(header, "kid");

    if (*why == NULL && kid != NULL
        && (ngx_http_tenant_jwt_string(pool, kid, &tok->kid) != NGX_OK
            || tok->kid.len == 0
            || tok->kid.len > NGX_HTTP_TENANT_JWT_KID_LEN))
    {
        *why = "the token's \"kid\" is not a key name";
    }

    json_decref(header);

    return *why ? NGX_DECLINED : NGX_OK;
}


ngx_int_t
ngx_http_tenant_jwt_token_verify(ngx_http_tenant_jwt_token_t *tok,
    EVP_PKEY *key, ngx_uint_t alg)
{
    int             n, ok;
    u_char          der[80], *p, *sig;
    size_t          siglen;
    BIGNUM         *r, *s;
    ECDSA_SIG      *es;
    EVP_MD_CTX     *md;

    if (tok->alg != alg) {
        return NGX_DECLINED;
    }

    sig = tok->signature.data;
    siglen = tok->signature.len;

    if (alg == NGX_HTTP_TENANT_JWT_ES256) {

        /* JWS carries r and s as 32 bytes each; OpenSSL wants DER */
        if (siglen != 64) {
            return NGX_DECLINED;
        }

        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig, 32, NULL);
        s = BN_bin2bn(sig + 32, 32, NULL);

        if (es == NULL || r == NULL || s == NULL
            || ECDSA_SIG_set0(es, r, s) != 1)
        {
            ECDSA_SIG_free(es);
            BN_free(r);
            BN_free(s);
            return NGX_ERROR;
        }

        n = i2d_ECDSA_SIG(es, NULL);

        if (n <= 0 || (size_t) n > sizeof(der)) {
            ECDSA_SIG_free(es);
            return NGX_ERROR;
        }

        p = der;
        n = i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);

        sig = der;
        siglen = n;

    } else if (siglen != (size_t) EVP_PKEY_get_size(key)) {
        return NGX_DECLINED;
    }

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1
         && EVP_DigestVerify(md, sig, siglen, tok->signed_part.data,
                             tok->signed_part.len)
            == 1;

    EVP_MD_CTX_free(md);

    if (!ok) {
        /* a bad signature's errors must not be taken for a later TLS one */
        ERR_clear_error();
    }

    return ok ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
ngx_http_tenant_jwt_token_claims(ngx_pool_t *pool,
    ngx_http_tenant_jwt_token_t *tok, ngx_http_tenant_jwt_rules_t *rules,
    time_t now, ngx_http_tenant_jwt_claims_t *out, const char **why)
{
    json_t     *claims, *v;
    ngx_str_t   s;

    claims = ngx_http_tenant_jwt_token_payload(pool, &tok->payload_b64);

    if (claims == NULL) {
        *why = "the token's payload is not a JSON object";
        return NGX_DECLINED;
    }

    *why = NULL;
    out->nbf = 0;
    ngx_str_null(&out->tenant);
    ngx_str_null(&out->sub);
    ngx_str_null(&out->subject);

    if (ngx_http_tenant_jwt_time(json_object_get(claims, "exp"), &out->exp)
        != NGX_OK)
    {
        *why = "the token has no \"exp\"";

    } else if (now > out->exp + rules->leeway) {
        *why = "the token has expired";
    }

    v = json_object_get(claims, "nbf");

    if (*why == NULL && v != NULL
        && (ngx_http_tenant_jwt_time(v, &out->nbf) != NGX_OK
            || now + rules->leeway < out->nbf))
    {
        *why = "the token is not valid yet";
    }

    if (*why == NULL && rules->issuer.len
        && (ngx_http_tenant_jwt_string(pool, json_object_get(claims, "iss"),
                                       &s)
            != NGX_OK
            || s.len != rules->issuer.len
            || ngx_strncmp(s.data, rules->issuer.data, s.len) != 0))
    {
        *why = "the token is from another issuer";
    }

    if (*why == NULL && rules->audience.len
        && ngx_http_tenant_jwt_audience(json_object_get(claims, "aud"),
                                        &rules->audience)
           != NGX_OK)
    {
        *why = "the token is for another audience";
    }

    if (*why == NULL) {
        /* not a string: as if missing */
        (void) ngx_http_tenant_jwt_string(pool,
                                   json_object_get(claims,
                                                   (char *) rules->claim.data),
                                   &out->tenant);
        (void) ngx_http_tenant_jwt_string(pool, json_object_get(claims, "sub"),
                                          &out->sub);

        if (rules->approved.len) {
            (void) ngx_http_tenant_jwt_string(pool,
                                json_object_get(claims,
                                                (char *) rules->approved.data),
                                &out->subject);
        }
    }

    json_decref(claims);

    return *why ? NGX_DECLINED : NGX_OK;
}


json_t *
ngx_http_tenant_jwt_token_payload(ngx_pool_t *pool, ngx_str_t *payload_b64)
{
    return ngx_http_tenant_jwt_json(pool, payload_b64->data,
                                    payload_b64->len);
}


/* strictly base64url: no padding, nothing else */

static ngx_int_t
ngx_http_tenant_jwt_b64url(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_str_t *out)
{
    size_t     i;
    u_char     c;
    ngx_str_t  src;

    for (i = 0; i < len; i++) {
        c = p[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            return NGX_DECLINED;
        }
    }

    out->data = ngx_pnalloc(pool, ngx_base64_decoded_length(len) + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    src.data = p;
    src.len = len;

    if (ngx_decode_base64url(out, &src) != NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static json_t *
ngx_http_tenant_jwt_json(ngx_pool_t *pool, u_char *p, size_t len)
{
    json_t     *j;
    ngx_str_t   text;

    if (ngx_http_tenant_jwt_b64url(pool, p, len, &text) != NGX_OK) {
        return NULL;
    }

    j = json_loadb((char *) text.data, text.len, JSON_REJECT_DUPLICATES,
                   NULL);

    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }

    return j;
}


/* a NumericDate: seconds, maybe with a fraction */

static ngx_int_t
ngx_http_tenant_jwt_time(json_t *v, time_t *t)
{
    double  d;

    if (!json_is_number(v)) {
        return NGX_DECLINED;
    }

    d = json_number_value(v);

    if (d < 0 || d > 253402300799.0) {     /* up to 9999-12-31 */
        return NGX_DECLINED;
    }

    *t = (time_t) d;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tenant_jwt_string(ngx_pool_t *pool, json_t *v, ngx_str_t *out)
{
    size_t  len;

    if (!json_is_string(v)) {
        return NGX_DECLINED;
    }

    len = json_string_length(v);

    out->data = ngx_pnalloc(pool, len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, json_string_value(v), len);
    out->data[len] = '\0';
    out->len = len;

    return NGX_OK;
}


/* "aud": one string, or an array of them; want among them */

static ngx_int_t
ngx_http_tenant_jwt_audience(json_t *aud, ngx_str_t *want)
{
    size_t   i;
    json_t  *v;

    if (json_is_string(aud)) {
        return (json_string_length(aud) == want->len
                && ngx_strncmp(json_string_value(aud), want->data, want->len)
                   == 0)
               ? NGX_OK : NGX_DECLINED;
    }

    if (!json_is_array(aud)) {
        return NGX_DECLINED;
    }

    json_array_foreach(aud, i, v) {
        if (json_is_string(v) && json_string_length(v) == want->len
            && ngx_strncmp(json_string_value(v), want->data, want->len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}
