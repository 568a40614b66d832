
/*
 * The keys tenant_jwt checks tokens with: uploaded keys (a PEM checked here
 * as the CLI checks it, common/tenant_jwk.c) and issuers' JWKS sources.  A
 * source is only kept here; the provisioner fetches it at its next pass, so
 * a worker never makes a request of its own (migration 019).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_api.h"
#include "tenant_jwk.h"


static void ngx_http_tenant_api_jwt_keys_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_jwt_key_added(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_jwt_removed(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_jwks_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_jwks_added(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);


/* GET jwt/keys */

void
ngx_http_tenant_api_jwt_keys(ngx_http_tenant_api_ctx_t *ctx)
{
    (void) ngx_http_tenant_api_query(ctx, "SELECT jwt_keys_json()",
                                     ngx_http_tenant_api_jwt_keys_done, 0);
}


static void
ngx_http_tenant_api_jwt_keys_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    ngx_http_tenant_api_wrap(ctx, res, "keys", "internal", "no answer",
                             NULL);
}


/* POST jwt/keys {"kid", "pem"}: 201 with the key's kid and algorithm */

void
ngx_http_tenant_api_jwt_key_add(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char        *hex, *p;
    char           err[256];
    ngx_str_t      kid, pem;
    const char    *why;
    tenant_jwk_t  *k;

    static const char  *known[] = { "kid", "pem", NULL };

    if (ngx_http_tenant_api_only(ctx, known) != NGX_OK) {
        return;
    }

    why = ngx_http_tenant_api_str_max(ctx, "kid", 1, TENANT_JWK_KID_MAX,
                                      &kid);

    if (why == NULL && !tenant_jwk_kid_valid((char *) kid.data, kid.len)) {
        why = "must be 1-128 printable ASCII characters, no space";
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field", why, "kid");
        return;
    }

    why = ngx_http_tenant_api_str_max(ctx, "pem", 1, TENANT_JWK_PEM_MAX,
                                      &pem);

    k = ngx_palloc(ctx->pool, sizeof(tenant_jwk_t));
    if (k == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return;
    }

    if (why == NULL
        && tenant_jwk_from_pem((char *) pem.data, pem.len, k, err,
                               sizeof(err))
           != 0)
    {
        why = err;
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field", why, "pem");
        return;
    }

    hex = ngx_pnalloc(ctx->pool, 2 + 2 * k->der_len + 1);
    if (hex == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return;
    }

    p = ngx_cpymem(hex, "\\x", 2);
    *ngx_hex_dump(p, k->der, k->der_len) = '\0';

    ctx->data = (void *) k->alg;

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT jwt_key_upload($1, $2, $3::bytea, $4), $1",
        ngx_http_tenant_api_jwt_key_added, 4, kid.data, k->alg, hex,
        ctx->actor.data);
}


static void
ngx_http_tenant_api_jwt_key_added(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    const char  *state;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (!PQgetisnull(res, 0, 0)) {
        state = PQgetvalue(res, 0, 0);

        ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT,
            ngx_strcmp(state, "exists") == 0 ? "exists" : "full",
            ngx_strcmp(state, "exists") == 0
            ? "a key has this kid (DELETE jwt/keys/{kid} to replace it)"
            : "the registry holds 64 keys, the most the edge takes",
            "kid");
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_CREATED,
                              json_pack("{s:{s:s, s:s, s:s}}", "key",
                                        "kid", PQgetvalue(res, 0, 1),
                                        "alg", (char *) ctx->data,
                                        "source", "upload"));
}


/* DELETE jwt/keys/{kid}, DELETE jwt/sources/{id}: at every edge at once */

void
ngx_http_tenant_api_jwt_key_delete(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t  kid;

    if (ngx_http_tenant_api_arg(ctx, 0, &kid) != NGX_OK) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return;
    }

    ctx->data = "no_such_key";

    (void) ngx_http_tenant_api_query(ctx, "SELECT jwt_key_delete($1, $2)",
                                     ngx_http_tenant_api_jwt_removed, 2,
                                     kid.data, ctx->actor.data);
}


void
ngx_http_tenant_api_jwks_source_delete(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t  id;
    ngx_int_t  n;

    if (ngx_http_tenant_api_arg(ctx, 0, &id) != NGX_OK) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return;
    }

    ctx->data = "no_such_source";

    n = ngx_atoi(id.data, id.len);

    if (n == NGX_ERROR || id.len > 18) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_source",
                                  "no JWKS source has this id", "id");
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT jwks_source_delete($1::bigint, NULL, $2)",
        ngx_http_tenant_api_jwt_removed, 2, id.data, ctx->actor.data);
}


static void
ngx_http_tenant_api_jwt_removed(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQgetisnull(res, 0, 0)) {
        if (ngx_strcmp(ctx->data, "no_such_key") == 0) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_key",
                                      "no uploaded key has this kid (a "
                                      "JWKS key goes with its source)",
                                      "kid");
        } else {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND,
                                      "no_such_source",
                                      "no JWKS source has this id", "id");
        }

        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              json_pack("{s:s}", "removed",
                                        PQgetvalue(res, 0, 0)));
}


/* GET jwt/sources */

void
ngx_http_tenant_api_jwks_sources(ngx_http_tenant_api_ctx_t *ctx)
{
    (void) ngx_http_tenant_api_query(ctx, "SELECT jwks_sources_json()",
                                     ngx_http_tenant_api_jwks_done, 0);
}


static void
ngx_http_tenant_api_jwks_done(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    ngx_http_tenant_api_wrap(ctx, res, "sources", "internal", "no answer",
                             NULL);
}


/*
 * POST jwt/sources {"url", "refresh"}: 202, the source kept; the
 * provisioner fetches it within its jwks_pass_interval, and GET
 * jwt/sources shows what it found (its keys, or the error).
 */

void
ngx_http_tenant_api_jwks_source_add(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char       refresh[NGX_INT_T_LEN + 1];
    size_t       i;
    json_t      *v;
    ngx_str_t    url;
    json_int_t   n;
    const char  *why;

    static const char  *known[] = { "url", "refresh", NULL };

    if (ngx_http_tenant_api_only(ctx, known) != NGX_OK) {
        return;
    }

    why = ngx_http_tenant_api_str_max(ctx, "url", 1, 2000, &url);

    if (why == NULL
        && !(url.len > 8 && ngx_strncmp(url.data, "https://", 8) == 0)
        && !(url.len > 7 && ngx_strncmp(url.data, "http://", 7) == 0))
    {
        why = "must be an http:// or https:// URL";
    }

    for (i = 0; why == NULL && i < url.len; i++) {
        if (url.data[i] <= ' ' || url.data[i] >= 0x7f) {
            why = "must be a URL without spaces or control characters";
        }
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field", why, "url");
        return;
    }

    v = json_object_get(ctx->body, "refresh");
    n = (v == NULL || json_is_null(v)) ? 300
        : json_is_integer(v) ? json_integer_value(v) : -1;

    if (n < 1 || n > 86400) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field",
                                  "must be seconds, 1 to 86400 (300 if "
                                  "left out)", "refresh");
        return;
    }

    *ngx_sprintf(refresh, "%L", (int64_t) n) = '\0';

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT jwks_source_add($1, $2::int, $3)",
        ngx_http_tenant_api_jwks_added, 3, url.data, refresh,
        ctx->actor.data);
}


static void
ngx_http_tenant_api_jwks_added(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    json_t  *src;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQgetisnull(res, 0, 0)) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT, "exists",
                                  "this URL is a source already", "url");
        return;
    }

    src = ngx_http_tenant_api_json(res, 0);

    if (src == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "bad registry answer", NULL);
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_ACCEPTED,
                              json_pack("{s:o}", "source", src));
}
