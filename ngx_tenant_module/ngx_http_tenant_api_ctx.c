
/*
 * What an admin API action does with its request context: reads the values
 * api.c parsed, queries the registry without blocking, and answers.  The
 * handler (api.c), the actions and the jobs all call down into this file,
 * which calls back only through the context's completion pointers.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_api.h"
#include "ngx_http_tenant_pg.h"
#include "ngx_http_tenant_reply.h"


static void ngx_http_tenant_api_query_done(ngx_http_tenant_pg_query_t *q,
    PGresult *res);


/*
 * Sends a parameterised query; params are NUL-terminated strings or NULL
 * (SQL NULL), copied into the context's pool.
 */

ngx_int_t
ngx_http_tenant_api_query(ngx_http_tenant_api_ctx_t *ctx, const char *sql,
    ngx_http_tenant_api_next_pt next, ngx_uint_t n, ...)
{
    va_list      ap;
    ngx_str_t    s;
    ngx_uint_t   i;
    const char  *v;

    va_start(ap, n);

    for (i = 0; i < n && i < NGX_HTTP_TENANT_API_MAX_PARAMS; i++) {
        v = va_arg(ap, const char *);

        if (v) {
            s.data = (u_char *) v;
            s.len = ngx_strlen(v) + 1;
            v = (const char *) ngx_pstrdup(ctx->pool, &s);

            if (v == NULL) {
                va_end(ap);
                ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                          "internal", "out of memory", NULL);
                return NGX_ERROR;
            }
        }

        ctx->query.params[i] = v;
    }

    va_end(ap);

    ctx->query.sql = sql;
    ctx->query.nparams = (int) n;
    ctx->query.handler = ngx_http_tenant_api_query_done;
    ctx->query.data = ctx;
    ctx->next = next;

    if (ngx_http_tenant_pg_send(&ctx->query) != NGX_OK) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "registry_unavailable",
                                  "the registry is unavailable, retry later",
                                  NULL);
        return NGX_ERROR;
    }

    ctx->in_query = 1;

    return NGX_OK;
}


static void
ngx_http_tenant_api_query_done(ngx_http_tenant_pg_query_t *q, PGresult *res)
{
    ngx_http_tenant_api_ctx_t  *ctx = q->data;

    ctx->in_query = 0;

    if (ctx->request == NULL) {
        /* the client went away while the query ran */
        ngx_http_tenant_api_free(ctx);
        return;
    }

    if (res == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "registry_unavailable",
                                  "the registry did not answer in time, "
                                  "retry later", NULL);
        return;
    }

    ctx->next(ctx, res);
}


void
ngx_http_tenant_api_reply(ngx_http_tenant_api_ctx_t *ctx, ngx_uint_t status,
    json_t *body)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ctx->unwait) {
        ctx->unwait(ctx);
    }

    rc = NGX_OK;

    if (status == NGX_HTTP_ACCEPTED && ctx->job > 0) {
        rc = ngx_http_tenant_reply_header(r, "Location",
                                          ctx->prefix.len + 6 + NGX_INT64_LEN,
                                          "%V%sjobs/%L", &ctx->prefix,
                                          (ctx->prefix.len
                                           && ctx->prefix.data[ctx->prefix.len
                                                               - 1] == '/')
                                          ? "" : "/", ctx->job);
    }

    if (rc == NGX_OK && ctx->retry_after) {
        rc = ngx_http_tenant_reply_header(r, "Retry-After", NGX_TIME_T_LEN,
                                          "%T", ctx->retry_after);
    }

    if (rc == NGX_OK && status == NGX_HTTP_NOT_ALLOWED) {
        rc = ngx_http_tenant_reply_header(r, "Allow", 32,
                                          "GET, POST, PUT, DELETE");
    }

    if (rc != NGX_OK) {
        json_decref(body);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_finalize_request(r, ngx_http_tenant_reply_json(r, status, body));
}


void
ngx_http_tenant_api_error(ngx_http_tenant_api_ctx_t *ctx, ngx_uint_t status,
    const char *code, const char *message, const char *field)
{
    ngx_http_tenant_api_reply(ctx, status,
                              ngx_http_tenant_reply_error(code, message,
                                                          field));
}


/* an SQL error: constraint violations are the caller's conflicts */

void
ngx_http_tenant_api_db_error(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    const char  *state;

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    if (state && ngx_strcmp(state, "23505") == 0) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_CONFLICT, "conflict",
                                  "this conflicts with the current state",
                                  NULL);
        return;
    }

    if (state && (ngx_strncmp(state, "22", 2) == 0
                  || ngx_strncmp(state, "23", 2) == 0))
    {
        ngx_http_tenant_api_error(ctx, 422, "invalid",
                                  "the registry refused a value", NULL);
        return;
    }

    ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                              "registry_error", "the registry query failed",
                              NULL);
}


/*
 * A result whose one row names, in column 0, a tenant that exists (its
 * status; NULL: none).  NGX_OK, or the answer has been sent: the registry's
 * error, or 404 no_such_tenant.
 */

ngx_int_t
ngx_http_tenant_api_tenant_row(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return NGX_ERROR;
    }

    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_tenant",
                                  "no tenant has this name", NULL);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a json/jsonb column as a jansson value; SQL NULL is JSON null */

json_t *
ngx_http_tenant_api_json(PGresult *res, int col)
{
    if (PQntuples(res) < 1 || PQnfields(res) <= col
        || PQgetisnull(res, 0, col))
    {
        return json_null();
    }

    return json_loadb(PQgetvalue(res, 0, col), PQgetlength(res, 0, col), 0,
                      NULL);
}


/* the route's '*' argument, checked by the caller */

ngx_int_t
ngx_http_tenant_api_arg(ngx_http_tenant_api_ctx_t *ctx, ngx_uint_t n,
    ngx_str_t *value)
{
    ngx_str_t  s;

    s = ctx->arg[n];

    value->data = ngx_pnalloc(ctx->pool, s.len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    value->len = s.len;
    *ngx_cpymem(value->data, s.data, s.len) = '\0';

    return NGX_OK;
}


/*
 * A string field of the body, NUL-terminated in the context's pool.
 * Returns NULL when fine, else a message (the field is then named).
 */

const char *
ngx_http_tenant_api_str(ngx_http_tenant_api_ctx_t *ctx, const char *name,
    ngx_uint_t required, ngx_str_t *value)
{
    return ngx_http_tenant_api_str_max(ctx, name, required, 4096, value);
}


/* the same, for fields that may be longer (PEM): at most max bytes */

const char *
ngx_http_tenant_api_str_max(ngx_http_tenant_api_ctx_t *ctx,
    const char *name, ngx_uint_t required, size_t max, ngx_str_t *value)
{
    json_t      *v;
    ngx_str_t    s;
    const char  *msg;

    ngx_str_null(value);

    v = json_object_get(ctx->body, name);

    if (v == NULL || json_is_null(v)) {
        return required ? "is required" : NULL;
    }

    if (!json_is_string(v)) {
        return "must be a string";
    }

    s.data = (u_char *) json_string_value(v);
    s.len = json_string_length(v);

    if (s.len > max) {
        value->data = ngx_pnalloc(ctx->pool, sizeof("is too long: at most  "
                                                    "bytes") + NGX_SIZE_T_LEN);
        if (value->data == NULL) {
            return "is too long";
        }

        *ngx_sprintf(value->data, "is too long: at most %uz bytes", max)
            = '\0';
        msg = (const char *) value->data;
        ngx_str_null(value);
        return msg;
    }

    value->data = ngx_pnalloc(ctx->pool, s.len + 1);
    if (value->data == NULL) {
        return "cannot be read";
    }

    value->len = s.len;
    *ngx_cpymem(value->data, s.data, s.len) = '\0';

    return NULL;
}


/* refuses fields a route does not know: a typo must not pass silently */

ngx_int_t
ngx_http_tenant_api_only(ngx_http_tenant_api_ctx_t *ctx, const char **fields)
{
    json_t       *v;
    const char   *key, **f;

    json_object_foreach(ctx->body, key, v) {
        for (f = fields; *f; f++) {
            if (ngx_strcmp(*f, key) == 0) {
                break;
            }
        }

        if (*f == NULL) {
            ngx_http_tenant_api_error(ctx, 422, "unknown_field",
                                      "this field is not known here", key);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


void
ngx_http_tenant_api_free(ngx_http_tenant_api_ctx_t *ctx)
{
    if (ctx->body) {
        json_decref(ctx->body);
    }

    ngx_destroy_pool(ctx->pool);
}


/*
 * A number from the query string (v, as api.c found it) within lo-hi, def
 * when absent; NGX_ERROR once a 400 naming the range has been sent.
 */

ngx_int_t
ngx_http_tenant_api_number(ngx_http_tenant_api_ctx_t *ctx, ngx_str_t *v,
    const char *name, ngx_int_t def, ngx_int_t lo, ngx_int_t hi)
{
    u_char     msg[64];
    ngx_int_t  n;

    if (v->data == NULL) {
        return def;
    }

    n = ngx_atoi(v->data, v->len);

    if (n == NGX_ERROR || n < lo || n > hi) {
        *ngx_snprintf(msg, sizeof(msg) - 1, "%s must be %i-%i", name, lo, hi)
            = '\0';
        ngx_http_tenant_api_error(ctx, NGX_HTTP_BAD_REQUEST,
                                  "invalid_parameter", (const char *) msg,
                                  name);
        return NGX_ERROR;
    }

    return n;
}


/*
 * ?status= checked against the values a route knows: NGX_OK with *out one
 * of them (NULL when absent), or NGX_ERROR once the 400 (its message
 * listing them) is sent.
 */

ngx_int_t
ngx_http_tenant_api_status_arg(ngx_http_tenant_api_ctx_t *ctx,
    const char **values, const char *valid, const char **out)
{
    ngx_str_t   v;
    ngx_uint_t  i;

    *out = NULL;
    v = ctx->args.status;

    if (v.data == NULL) {
        return NGX_OK;
    }

    for (i = 0; values[i]; i++) {
        if (v.len == ngx_strlen(values[i])
            && ngx_strncmp(v.data, values[i], v.len) == 0)
        {
            *out = values[i];
            return NGX_OK;
        }
    }

    ngx_http_tenant_api_error(ctx, NGX_HTTP_BAD_REQUEST, "invalid_parameter",
                              valid, "status");
    return NGX_ERROR;
}


/*
 * An answer that is the registry's one JSON value, sent as {name: value};
 * a NULL value is the 404 code, message and field given (what was looked
 * for is not there).
 */

void
ngx_http_tenant_api_wrap(ngx_http_tenant_api_ctx_t *ctx, PGresult *res,
    const char *name, const char *code, const char *message,
    const char *field)
{
    json_t  *v;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQgetisnull(res, 0, 0)) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, code, message,
                                  field);
        return;
    }

    v = ngx_http_tenant_api_json(res, 0);

    if (v == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "bad registry answer", NULL);
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK, json_pack("{s:o}", name, v));
}
