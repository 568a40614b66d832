
/*
 * The admin API's read-only listings: what can be created here (blueprints),
 * jobs, the audit log, and the API's own description (OpenAPI).  Each is
 * one statement of a SQL function the CLI shares (migration 006); pages
 * are newest first, keyset-paginated by id.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_api.h"
#include "ngx_http_tenant_api_validate.h"


#define NGX_HTTP_TENANT_API_PAGE_DEFAULT  50
#define NGX_HTTP_TENANT_API_PAGE_MAX      100


static ngx_int_t ngx_http_tenant_api_page(ngx_http_tenant_api_ctx_t *ctx,
    u_char **before, u_char **limit);
static ngx_int_t ngx_http_tenant_api_tenant_filter(
    ngx_http_tenant_api_ctx_t *ctx, u_char **tenant);
static void ngx_http_tenant_api_one_json(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_jobs_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_audit_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_page_reply(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res, const char *name);


/* ?before=ID&limit=1..100 (50): NULL before for the first page */

static ngx_int_t
ngx_http_tenant_api_page(ngx_http_tenant_api_ctx_t *ctx, u_char **before,
    u_char **limit)
{
    u_char     *p;
    ngx_int_t   n;
    ngx_str_t   v;
    ngx_uint_t  i;

    *before = NULL;
    n = ngx_http_tenant_api_number(ctx, &ctx->args.limit, "limit",
                                   NGX_HTTP_TENANT_API_PAGE_DEFAULT, 1,
                                   NGX_HTTP_TENANT_API_PAGE_MAX);
    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    v = ctx->args.before;

    if (v.data) {
        for (i = 0; i < v.len; i++) {
            if (v.data[i] < '0' || v.data[i] > '9') {
                break;
            }
        }

        if (v.len == 0 || v.len > 18 || i != v.len) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_BAD_REQUEST,
                                      "invalid_parameter",
                                      "before must be an id from a page's "
                                      "\"next\"", "before");
            return NGX_ERROR;
        }

        p = ngx_pnalloc(ctx->pool, v.len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        *ngx_cpymem(p, v.data, v.len) = '\0';
        *before = p;
    }

    p = ngx_pnalloc(ctx->pool, NGX_INT_T_LEN + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *ngx_sprintf(p, "%i", n) = '\0';
    *limit = p;

    return NGX_OK;
}


/* ?tenant=NAME: NULL when absent */

static ngx_int_t
ngx_http_tenant_api_tenant_filter(ngx_http_tenant_api_ctx_t *ctx,
    u_char **tenant)
{
    ngx_str_t  v;

    *tenant = NULL;

    v = ctx->args.tenant;

    if (v.data == NULL) {
        return NGX_OK;
    }

    if (tenant_slug_check(v.data, v.len) != NULL || v.len > 30) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_BAD_REQUEST,
                                  "invalid_parameter",
                                  "tenant must be a tenant name", "tenant");
        return NGX_ERROR;
    }

    *tenant = ngx_pnalloc(ctx->pool, v.len + 1);
    if (*tenant == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(*tenant, v.data, v.len) = '\0';

    return NGX_OK;
}


void
ngx_http_tenant_api_blueprints(ngx_http_tenant_api_ctx_t *ctx)
{
    (void) ngx_http_tenant_api_query(ctx, "SELECT blueprint_list()",
                                     ngx_http_tenant_api_one_json, 0);
}


/* GET platform: provisioners, edges listening, tenants and jobs by status */

void
ngx_http_tenant_api_platform(ngx_http_tenant_api_ctx_t *ctx)
{
    (void) ngx_http_tenant_api_query(ctx, "SELECT platform_json()",
                                     ngx_http_tenant_api_one_json, 0);
}


/* an answer that is the registry's one JSON value */

static void
ngx_http_tenant_api_one_json(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    json_t  *body;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    body = ngx_http_tenant_api_json(res, 0);

    if (body == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "bad registry answer", NULL);
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK, body);
}


/* GET jobs?tenant=NAME&status=S&before=ID&limit=N */

void
ngx_http_tenant_api_jobs(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char      *tenant, *before, *limit;
    const char  *status;

    static const char  *statuses[] = { "queued", "running", "done", "failed",
                                       NULL };

    if (ngx_http_tenant_api_tenant_filter(ctx, &tenant) != NGX_OK
        || ngx_http_tenant_api_page(ctx, &before, &limit) != NGX_OK)
    {
        return;
    }

    if (ngx_http_tenant_api_status_arg(ctx, statuses,
                                       "status must be queued, running, "
                                       "done or failed", &status)
        != NGX_OK)
    {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT * FROM job_list($1, $2, $3::bigint, $4::int)",
        ngx_http_tenant_api_jobs_done, 4, (char *) tenant, status,
        (char *) before, (char *) limit);
}


static void
ngx_http_tenant_api_jobs_done(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    ngx_http_tenant_api_page_reply(ctx, res, "jobs");
}


/* GET audit?tenant=NAME&before=ID&limit=N */

void
ngx_http_tenant_api_audit(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char  *tenant, *before, *limit;

    if (ngx_http_tenant_api_tenant_filter(ctx, &tenant) != NGX_OK
        || ngx_http_tenant_api_page(ctx, &before, &limit) != NGX_OK)
    {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT * FROM audit_list($1, $2::bigint, $3::int)",
        ngx_http_tenant_api_audit_done, 3, (char *) tenant, (char *) before,
        (char *) limit);
}


static void
ngx_http_tenant_api_audit_done(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    ngx_http_tenant_api_page_reply(ctx, res, "entries");
}


/* {"<name>": [...], "next": "<id>" | null} */

static void
ngx_http_tenant_api_page_reply(ngx_http_tenant_api_ctx_t *ctx, PGresult *res,
    const char *name)
{
    json_t  *page, *next;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    page = ngx_http_tenant_api_json(res, 0);

    if (page == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "bad registry answer", NULL);
        return;
    }

    next = PQgetisnull(res, 0, 1) ? json_null()
                                  : json_string(PQgetvalue(res, 0, 1));

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              json_pack("{s:o, s:o}", name, page,
                                        "next", next));
}


/* the document tenant_admin_api_openapi loaded at configuration time */

void
ngx_http_tenant_api_openapi(ngx_http_tenant_api_ctx_t *ctx)
{
    if (ctx->openapi == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "not_found",
                                  "no OpenAPI document is configured "
                                  "(tenant_admin_api_openapi)", NULL);
        return;
    }

    /* the reply drops one reference; the configuration keeps its own */
    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK, json_incref(ctx->openapi));
}
