
/*
 * The admin API's certificates: a tenant's custom domain gets one uploaded
 * (checked before anything is stored: key matches, host covered, valid
 * now, chain in order), shown (never its key), deleted; and what expires
 * soon is listed.  The key is sealed here, under the edges' certificate
 * key, so the registry never holds it in the clear.  Also the tenant's
 * HSTS setting.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_api.h"
#include "ngx_http_tenant_api_validate.h"
#include "ngx_http_tenant_certs.h"
#include "ngx_http_tenant_host.h"
#include "tenant_cert.h"


static ngx_int_t ngx_http_tenant_api_cert_args(ngx_http_tenant_api_ctx_t *ctx,
    ngx_str_t *name, u_char **host);
static u_char *ngx_http_tenant_api_bytea(ngx_pool_t *pool, u_char *src,
    size_t len);
static void ngx_http_tenant_api_cert_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_cert_read(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_certs_read(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_hsts_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);


/* PUT tenants/{name}/domains/{host}/certificate {certificate, key} */

void
ngx_http_tenant_api_cert_put(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char         *host, *chain, *sealed, *nonce_hex;
    u_char          nonce[TENANT_SEAL_NONCE], aad[32 + 256];
    u_char          nb[NGX_TIME_T_LEN + 1], na[NGX_TIME_T_LEN + 1];
    u_char         *ct;
    char            err[1024];
    size_t          alen;
    ngx_str_t       name, pem, key;
    const char     *why, *field;
    tenant_cert_t   cert;

    static const char  *known[] = { "certificate", "key", NULL };

    if (ngx_http_tenant_api_cert_args(ctx, &name, &host) != NGX_OK
        || ngx_http_tenant_api_only(ctx, known) != NGX_OK)
    {
        return;
    }

    if (ctx->certs == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "tls_not_configured",
                                  "this edge has no tenant_ssl_zone (with its "
                                  "key_file): certificates cannot be sealed",
                                  NULL);
        return;
    }

    field = "certificate";
    why = ngx_http_tenant_api_str_max(ctx, field, 1, TENANT_CERT_MAX_PEM,
                                      &pem);

    if (why == NULL) {
        field = "key";
        why = ngx_http_tenant_api_str_max(ctx, field, 1, TENANT_CERT_MAX_PEM,
                                          &key);
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field", why, field);
        return;
    }

    if (tenant_cert_check((char *) pem.data, pem.len, (char *) key.data,
                          key.len, (char *) host, ngx_time(), &cert, err,
                          sizeof(err))
        != 0)
    {
        explicit_bzero(key.data, key.len);
        ngx_http_tenant_api_error(ctx, 422, "invalid_certificate", err,
                                  ngx_strncmp(err, "key", 3) == 0
                                  ? "key" : "certificate");
        return;
    }

    explicit_bzero(key.data, key.len);

    ct = ngx_pnalloc(ctx->pool, cert.key_len + TENANT_SEAL_TAG);

    /* "ngx_tenant/cert/1" NUL host: the key opens for this host only */
    alen = ngx_cpymem(ngx_cpymem(aad, "ngx_tenant/cert/1", 18), host,
                      ngx_strlen(host))
           - aad;

    if (ct == NULL
        || tenant_seal(ctx->certs->key, aad, alen, cert.key, cert.key_len,
                       nonce, ct)
           != 0)
    {
        tenant_cert_free(&cert);
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "cannot seal the key", NULL);
        return;
    }

    chain = ngx_http_tenant_api_bytea(ctx->pool, cert.chain, cert.chain_len);
    sealed = ngx_http_tenant_api_bytea(ctx->pool, ct,
                                       cert.key_len + TENANT_SEAL_TAG);
    nonce_hex = ngx_http_tenant_api_bytea(ctx->pool, nonce,
                                          TENANT_SEAL_NONCE);

    *ngx_sprintf(nb, "%T", cert.not_before) = '\0';
    *ngx_sprintf(na, "%T", cert.not_after) = '\0';

    tenant_cert_free(&cert);

    if (chain == NULL || sealed == NULL || nonce_hex == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT * FROM certificate_put($1, $2, $3::bytea, $4::bytea,"
        " $5::bytea, $6, $7, $8, to_timestamp($9::bigint),"
        " to_timestamp($10::bigint), $11)",
        ngx_http_tenant_api_cert_done, 11, name.data, host, chain, nonce_hex,
        sealed, cert.names, cert.issuer, cert.key_type, nb, na,
        ctx->actor.data);
}


/* GET tenants/{name}/domains/{host}/certificate */

void
ngx_http_tenant_api_cert_get(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char     *host;
    ngx_str_t   name;

    if (ngx_http_tenant_api_cert_args(ctx, &name, &host) != NGX_OK) {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT (SELECT status FROM tenants WHERE id = $1),"
        "       (SELECT certificate_json(c) FROM certificates c"
        "         WHERE host = $2 AND tenant_id = $1)",
        ngx_http_tenant_api_cert_read, 2, name.data, host);
}


/* DELETE tenants/{name}/domains/{host}/certificate */

void
ngx_http_tenant_api_cert_delete(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char     *host;
    ngx_str_t   name;

    if (ngx_http_tenant_api_cert_args(ctx, &name, &host) != NGX_OK) {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT * FROM certificate_remove($1, $2, $3)",
        ngx_http_tenant_api_cert_read, 3, name.data, host, ctx->actor.data);
}


/* GET certificates?within_days=N&limit=M: what expires soonest first */

void
ngx_http_tenant_api_certs_expiring(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char     days[NGX_INT_T_LEN + 1], limit[NGX_INT_T_LEN + 1];
    ngx_int_t  d, n;

    d = ngx_http_tenant_api_number(ctx, &ctx->args.within_days,
                                   "within_days", 30, 0, 36500);
    if (d == NGX_ERROR) {
        return;
    }

    n = ngx_http_tenant_api_number(ctx, &ctx->args.limit, "limit", 100, 1,
                                   1000);
    if (n == NGX_ERROR) {
        return;
    }

    *ngx_sprintf(days, "%i", d) = '\0';
    *ngx_sprintf(limit, "%i", n) = '\0';

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT certificate_expiring($1::int, $2::int)",
        ngx_http_tenant_api_certs_read, 2, days, limit);
}


/* PUT tenants/{name}/hsts {"enabled": true|false} */

void
ngx_http_tenant_api_hsts(ngx_http_tenant_api_ctx_t *ctx)
{
    json_t      *v;
    ngx_str_t    name;

    static const char  *known[] = { "enabled", NULL };

    if (ngx_http_tenant_api_arg(ctx, 0, &name) != NGX_OK) {
        return;
    }

    if (tenant_name_check(name.data, name.len) != NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_tenant",
                                  "no tenant has this name", NULL);
        return;
    }

    if (ngx_http_tenant_api_only(ctx, known) != NGX_OK) {
        return;
    }

    v = json_object_get(ctx->body, "enabled");

    if (!json_is_boolean(v)) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field",
                                  "must be true or false", "enabled");
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "WITH t AS (UPDATE tenants SET hsts = $2::boolean, updated_at = now()"
        "            WHERE id = $1 RETURNING id, hsts),"
        " a AS (INSERT INTO audit_log (actor, action, tenant_id, detail)"
        "       SELECT $3, 'tenant.hsts', t.id,"
        "              jsonb_build_object('enabled', t.hsts) FROM t)"
        " SELECT json_build_object('tenant', id, 'hsts', hsts) FROM t",
        ngx_http_tenant_api_hsts_done, 3, name.data,
        json_is_true(v) ? "true" : "false", ctx->actor.data);
}


/* the tenant's name and its custom domain, checked; host NUL-terminated */

static ngx_int_t
ngx_http_tenant_api_cert_args(ngx_http_tenant_api_ctx_t *ctx,
    ngx_str_t *name, u_char **host)
{
    size_t       n;
    ngx_str_t    h;
    const char  *why;

    if (ngx_http_tenant_api_arg(ctx, 0, name) != NGX_OK
        || ngx_http_tenant_api_arg(ctx, 1, &h) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (tenant_name_check(name->data, name->len) != NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_tenant",
                                  "no tenant has this name", NULL);
        return NGX_ERROR;
    }

    *host = ngx_pnalloc(ctx->pool, NGX_HTTP_TENANT_HOST_MAX + 1);
    if (*host == NULL) {
        return NGX_ERROR;
    }

    why = ngx_http_tenant_api_check_domain(*host, h.data, h.len, &n);

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_host", why, "host");
        return NGX_ERROR;
    }

    (*host)[n] = '\0';

    return NGX_OK;
}


/* "\x" and hex digits: a bytea parameter, NUL-terminated */

static u_char *
ngx_http_tenant_api_bytea(ngx_pool_t *pool, u_char *src, size_t len)
{
    u_char  *p;

    p = ngx_pnalloc(pool, 2 + 2 * len + 1);
    if (p == NULL) {
        return NULL;
    }

    p[0] = '\\';
    p[1] = 'x';
    *ngx_hex_dump(p + 2, src, len) = '\0';

    return p;
}


/*
 * Columns: the tenant's status (NULL: no tenant), the certificate (NULL:
 * none, and code and message say what that means here).
 */

static void
ngx_http_tenant_api_cert_answer(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res, const char *code, const char *message)
{
    if (ngx_http_tenant_api_tenant_row(ctx, res) != NGX_OK) {
        return;
    }

    if (PQgetisnull(res, 0, 1)) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, code, message,
                                  "host");
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              json_pack("{s:o}", "certificate",
                                        ngx_http_tenant_api_json(res, 1)));
}


static void
ngx_http_tenant_api_cert_done(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    ngx_http_tenant_api_cert_answer(ctx, res, "no_such_domain",
                                    "this host is not a verified custom "
                                    "domain of the tenant: add it first "
                                    "(POST tenants/{name}/domains)");
}


static void
ngx_http_tenant_api_cert_read(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    ngx_http_tenant_api_cert_answer(ctx, res, "no_such_certificate",
                                    "this tenant has no certificate for "
                                    "this host");
}


static void
ngx_http_tenant_api_certs_read(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              json_pack("{s:o}", "certificates",
                                        ngx_http_tenant_api_json(res, 0)));
}


static void
ngx_http_tenant_api_hsts_done(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_tenant",
                                  "no tenant has this name", NULL);
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              ngx_http_tenant_api_json(res, 0));
}
