
/*
 * The admin API's traffic limits: a tenant's own and its plan, and the
 * plans.  Each edge enforces them from the tenant's cache entry, so a
 * change reaches every edge through tenant_changed like any other.
 *
 *   GET  tenants/{name}/limits    its own, its plan's, and as enforced
 *   PUT  tenants/{name}/limits    replaces them: absent or null is none
 *   GET  plans
 *   PUT  plans/{name}             makes or replaces a plan
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_api.h"
#include "tenant_limits.h"
#include "tenant_names.h"


static ngx_int_t ngx_http_tenant_api_limits_tenant(
    ngx_http_tenant_api_ctx_t *ctx, ngx_str_t *name);
static json_t *ngx_http_tenant_api_limits_body(ngx_http_tenant_api_ctx_t *ctx,
    ngx_uint_t plan);
static void ngx_http_tenant_api_limits_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_plans_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static u_char *ngx_http_tenant_api_limits_dump(ngx_http_tenant_api_ctx_t *ctx,
    json_t *limits);
static u_char *ngx_http_tenant_api_limits_doc(ngx_http_tenant_api_ctx_t *ctx,
    ngx_uint_t plan);


/* the route's tenant name; NGX_ERROR once a 404 has been sent */

static ngx_int_t
ngx_http_tenant_api_limits_tenant(ngx_http_tenant_api_ctx_t *ctx,
    ngx_str_t *name)
{
    if (ngx_http_tenant_api_arg(ctx, 0, name) != NGX_OK) {
        return NGX_ERROR;
    }

    if (tenant_name_check(name->data, name->len) != NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_tenant",
                                  "no tenant has this name", NULL);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* GET tenants/{name}/limits */

void
ngx_http_tenant_api_limits_get(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t  name;

    if (ngx_http_tenant_api_limits_tenant(ctx, &name) != NGX_OK) {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT tenant_limits_json(t) FROM tenants t WHERE id = $1",
        ngx_http_tenant_api_limits_done, 1, name.data);
}


/* PUT tenants/{name}/limits {rate, burst, connections, monthly_*, plan} */

void
ngx_http_tenant_api_limits_put(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char     *doc;
    ngx_str_t   name;

    if (ngx_http_tenant_api_limits_tenant(ctx, &name) != NGX_OK) {
        return;
    }

    doc = ngx_http_tenant_api_limits_doc(ctx, 1);
    if (doc == NULL) {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT tenant_set_limits($1, $2::jsonb, $3)",
        ngx_http_tenant_api_limits_done, 3, name.data, doc,
        ctx->actor.data);
}


/* GET plans */

void
ngx_http_tenant_api_plans(ngx_http_tenant_api_ctx_t *ctx)
{
    (void) ngx_http_tenant_api_query(ctx,
        "SELECT json_build_object('plans', plans_json())",
        ngx_http_tenant_api_plans_done, 0);
}


/* PUT plans/{name} {rate, burst, connections, monthly_*} */

void
ngx_http_tenant_api_plan_put(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char      *doc;
    ngx_str_t    name;
    const char  *why;

    if (ngx_http_tenant_api_arg(ctx, 0, &name) != NGX_OK) {
        return;
    }

    why = tenant_slug_check(name.data, name.len);

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_plan", why, "plan");
        return;
    }

    doc = ngx_http_tenant_api_limits_doc(ctx, 0);
    if (doc == NULL) {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT plan_set($1, $2::jsonb, $3)",
        ngx_http_tenant_api_plans_done, 3, name.data, doc, ctx->actor.data);
}


/*
 * The body's limits, each checked against tenant_limits (and "plan", a
 * plan's name, with plan), as a new object of only those; NULL once a
 * 422 naming the field has been sent.
 */

static json_t *
ngx_http_tenant_api_limits_body(ngx_http_tenant_api_ctx_t *ctx,
    ngx_uint_t plan)
{
    json_t                *v, *out;
    const char            *why, *s;
    const tenant_limit_t  *l;

    static const char  *known[] = { "rate", "burst", "connections",
                                    "monthly_requests", "monthly_bytes",
                                    "plan", NULL };
    static const char  *known_plan[] = { "rate", "burst", "connections",
                                         "monthly_requests", "monthly_bytes",
                                         NULL };

    if (ngx_http_tenant_api_only(ctx, plan ? known : known_plan) != NGX_OK) {
        return NULL;
    }

    out = json_object();
    if (out == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return NULL;
    }

    for (l = tenant_limits; l->name; l++) {
        v = json_object_get(ctx->body, l->name);

        if (v == NULL || json_is_null(v)) {
            continue;
        }

        why = json_is_number(v) ? tenant_limit_check(l, json_number_value(v))
                                : l->why;

        if (why == NULL && l->integer && !json_is_integer(v)) {
            why = l->why;
        }

        if (why) {
            json_decref(out);
            ngx_http_tenant_api_error(ctx, 422, "invalid_field", why,
                                      l->name);
            return NULL;
        }

        json_object_set(out, l->name, v);
    }

    v = json_object_get(ctx->body, "plan");

    if (plan && v && !json_is_null(v)) {
        s = json_string_value(v);

        why = (s == NULL)
              ? "must be a plan's name, or null for none"
              : tenant_slug_check((u_char *) s, json_string_length(v));

        if (why) {
            json_decref(out);
            ngx_http_tenant_api_error(ctx, 422, "invalid_field", why, "plan");
            return NULL;
        }

        json_object_set(out, "plan", v);
    }

    return out;
}


/* the body, checked, as the query's jsonb parameter; NULL once answered */

static u_char *
ngx_http_tenant_api_limits_doc(ngx_http_tenant_api_ctx_t *ctx,
    ngx_uint_t plan)
{
    json_t  *limits;

    limits = ngx_http_tenant_api_limits_body(ctx, plan);
    if (limits == NULL) {
        return NULL;
    }

    return ngx_http_tenant_api_limits_dump(ctx, limits);
}


/* the checked limits as the query's jsonb parameter, in ctx's pool */

static u_char *
ngx_http_tenant_api_limits_dump(ngx_http_tenant_api_ctx_t *ctx,
    json_t *limits)
{
    char    *s;
    u_char  *doc;
    size_t   len;

    s = json_dumps(limits, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(limits);

    if (s == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return NULL;
    }

    len = ngx_strlen(s);

    doc = ngx_pnalloc(ctx->pool, len + 1);
    if (doc == NULL) {
        free(s);
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return NULL;
    }

    ngx_memcpy(doc, s, len + 1);
    free(s);

    return doc;
}


static void
ngx_http_tenant_api_limits_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    json_t      *body;
    const char  *error;

    if (ngx_http_tenant_api_tenant_row(ctx, res) != NGX_OK) {
        return;
    }

    body = ngx_http_tenant_api_json(res, 0);
    error = json_string_value(json_object_get(body, "error"));

    if (error) {
        json_decref(body);
        ngx_http_tenant_api_error(ctx, 422, "no_such_plan",
                                  "no plan has this name: make it with "
                                  "PUT /api/plans/{name}", "plan");
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK, body);
}


static void
ngx_http_tenant_api_plans_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              ngx_http_tenant_api_json(res, 0));
}
