
/*
 * The admin API: JSON in and out, API keys checked against their hashes in
 * the registry, every registry access non-blocking and parameterised.
 * Routes and their SQL are in ngx_http_tenant_api_actions.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "ngx_http_tenant_api.h"
#include "ngx_http_tenant_api_validate.h"
#include "ngx_http_tenant_pg.h"
#include "ngx_http_tenant_reply.h"
#include "ngx_http_tenant_ssl.h"


static ngx_int_t ngx_http_tenant_api_handler(ngx_http_request_t *r);
static ngx_http_tenant_api_route_t *ngx_http_tenant_api_match(
    ngx_http_request_t *r, ngx_str_t *path, ngx_str_t *args,
    ngx_uint_t *allowed);
static void ngx_http_tenant_api_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_tenant_api_read_body(ngx_http_tenant_api_ctx_t *ctx,
    ngx_str_t *text);
static ngx_table_elt_t *ngx_http_tenant_api_header(ngx_http_request_t *r,
    const char *name, size_t len);
static void ngx_http_tenant_api_args(ngx_http_request_t *r,
    ngx_http_tenant_api_args_t *a);
static ngx_int_t ngx_http_tenant_api_session_request(
    ngx_http_tenant_api_ctx_t *ctx);
static ngx_int_t ngx_http_tenant_api_key(ngx_http_request_t *r,
    ngx_str_t *key);
static void ngx_http_tenant_api_auth(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_auth_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_scope(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_owned(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_not_owned(ngx_http_tenant_api_ctx_t *ctx);
static void ngx_http_tenant_api_cleanup(void *data);
static ngx_int_t ngx_http_tenant_api_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tenant_api_add_variables(ngx_conf_t *cf);
static char *ngx_http_tenant_admin_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_http_tenant_api_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_tenant_api_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_tenant_api_create_limit(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_tenant_api_openapi_file(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_tenant_api_json_cleanup(void *data);


typedef struct {
    ngx_flag_t                      verify_domains;
    ngx_uint_t                      create_limit;   /* 0: none */
    time_t                          create_window;
    json_t                         *openapi;
    ngx_thread_pool_t              *thread_pool;  /* sign-ins' hashing */
} ngx_http_tenant_api_loc_conf_t;


static ngx_command_t  ngx_http_tenant_api_commands[] = {

    { ngx_string("tenant_admin_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tenant_admin_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tenant_admin_api_create_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_tenant_api_create_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tenant_admin_api_domain_verification"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_api_loc_conf_t, verify_domains),
      NULL },

    { ngx_string("tenant_admin_api_openapi"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tenant_api_openapi_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tenant_api_module_ctx = {
    ngx_http_tenant_api_add_variables,     /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_tenant_api_create_loc_conf,   /* create location configuration */
    ngx_http_tenant_api_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_tenant_api_module = {
    NGX_MODULE_V1,
    &ngx_http_tenant_api_module_ctx,       /* module context */
    ngx_http_tenant_api_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_tenant_api_key_var = ngx_string("tenant_api_key_id");


static ngx_int_t
ngx_http_tenant_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_str_t                     path, value;
    ngx_uint_t                    allowed;
    ngx_pool_t                   *pool;
    ngx_table_elt_t              *h;
    ngx_pool_cleanup_t           *cln;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_tenant_api_ctx_t       *ctx;
    ngx_http_tenant_api_route_t     *route;
    ngx_http_tenant_api_loc_conf_t  *alcf;
    ngx_http_tenant_ssl_main_conf_t *smcf;

    pool = ngx_create_pool(4096, r->connection->log);
    if (pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_pcalloc(pool, sizeof(ngx_http_tenant_api_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ctx == NULL || cln == NULL) {
        ngx_destroy_pool(pool);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_tenant_api_module);

    ctx->pool = pool;
    ctx->request = r;
    ctx->wait = -1;
    ctx->create_limit = alcf->create_limit;
    ctx->verify_domains = alcf->verify_domains;
    ctx->create_window = alcf->create_window;
    ctx->openapi = alcf->openapi;
    ctx->thread_pool = alcf->thread_pool;

    cln->handler = ngx_http_tenant_api_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_tenant_api_module);

    /* every answer below goes through ngx_http_tenant_api_reply() */
    r->main->count++;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    ctx->prefix = clcf->name;
    ngx_http_tenant_reply_path(r, &path);

    route = ngx_http_tenant_api_match(r, &path, ctx->arg, &allowed);

    if (route == NULL) {
        if (allowed) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_ALLOWED,
                                      "method_not_allowed",
                                      "this method is not allowed here",
                                      NULL);
        } else {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "not_found",
                                      "no such API resource", NULL);
        }

        return NGX_DONE;
    }

    ctx->route = route;
    ctx->tmcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_module);
    smcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_ssl_module);
    ctx->certs = smcf->zone ? smcf->zone->data : NULL;

    ngx_http_tenant_api_args(r, &ctx->args);

    h = ngx_http_tenant_api_header(r, "Idempotency-Key", 15);
    if (h) {
        ctx->idempotency_key = h->value;
    }

    if (ngx_http_tenant_api_session_request(ctx) != NGX_OK) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return NGX_DONE;
    }

    if (ngx_http_arg(r, (u_char *) "wait", 4, &value) == NGX_OK) {
        rc = ngx_atoi(value.data, value.len);

        if (rc == NGX_ERROR || rc > NGX_HTTP_TENANT_API_MAX_WAIT) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_BAD_REQUEST,
                                      "invalid_parameter",
                                      "wait must be 0-60 seconds", "wait");
            return NGX_DONE;
        }

        ctx->wait = rc;
    }

    /* body 2: optional, read only when one is sent */
    if (route->body == 1
        || (route->body == 2 && (r->headers_in.content_length_n > 0
                                 || r->headers_in.chunked)))
    {
        if (r->headers_in.content_length_n > NGX_HTTP_TENANT_API_MAX_BODY) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "body_too_large",
                                      "request bodies are limited to 64 KiB",
                                      NULL);
            return NGX_DONE;
        }

        h = r->headers_in.content_type;

        if (h == NULL
            || h->value.len < 16
            || ngx_strncasecmp(h->value.data, (u_char *) "application/json",
                               16) != 0
            || (h->value.len > 16 && h->value.data[16] != ';'
                && h->value.data[16] != ' '))
        {
            ngx_http_tenant_api_error(ctx,
                                      NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                      "unsupported_media_type",
                                      "send Content-Type: application/json",
                                      NULL);
            return NGX_DONE;
        }
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_tenant_api_body);

    /* reading the body holds a reference of its own */
    r->main->count--;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * Routes are patterns like "tenants/X/suspend" where an asterisk takes one
 * path segment (the table is in ngx_http_tenant_api_actions.c).  allowed tells
 * a path that exists under another method (405) from none (404).
 */

static ngx_http_tenant_api_route_t *
ngx_http_tenant_api_match(ngx_http_request_t *r, ngx_str_t *path,
    ngx_str_t *args, ngx_uint_t *allowed)
{
    u_char                       *p, *last, *seg;
    ngx_uint_t                    nargs, method;
    const char                   *pat;
    ngx_http_tenant_api_route_t  *route;

    *allowed = 0;
    method = (r->method == NGX_HTTP_HEAD) ? NGX_HTTP_GET : r->method;

    for (route = ngx_http_tenant_api_routes; route->path; route++) {

        pat = route->path;
        p = path->data;
        last = path->data + path->len;
        nargs = 0;

        while (*pat && p < last) {
            if (*pat == '*') {
                seg = p;

                while (p < last && *p != '/') {
                    p++;
                }

                if (p == seg || nargs == 2) {
                    break;
                }

                args[nargs].data = seg;
                args[nargs].len = p - seg;
                nargs++;
                pat++;
                continue;
            }

            if (*pat != (char) *p) {
                break;
            }

            pat++;
            p++;
        }

        if (*pat != '\0' || p != last) {
            continue;
        }

        if (route->method == method) {
            return route;
        }

        *allowed = 1;
    }

    return NULL;
}


static void
ngx_http_tenant_api_body(ngx_http_request_t *r)
{
    ngx_str_t                   text;
    json_error_t                err;
    ngx_http_tenant_api_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tenant_api_module);

    if (ctx->route->body) {
        switch (ngx_http_tenant_api_read_body(ctx, &text)) {

        case NGX_OK:
            break;

        case NGX_DECLINED:
            ngx_http_tenant_api_error(ctx, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "body_too_large",
                                      "request bodies are limited to 64 KiB",
                                      NULL);
            return;

        default:
            ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "internal", "cannot read the body",
                                      NULL);
            return;
        }

        /*
         * jansson refuses invalid UTF-8, \u0000, duplicate keys (with the
         * flag) and numbers it cannot hold; nesting is capped by jansson.
         */

        if (text.len == 0 && ctx->route->body == 2) {
            goto parsed;
        }

        if (text.len == 0) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_BAD_REQUEST,
                                      "empty_body",
                                      "the request body is empty: send a "
                                      "JSON object", NULL);
            return;
        }

        ctx->body = json_loadb((const char *) text.data, text.len,
                               JSON_REJECT_DUPLICATES, &err);

        if (ctx->body == NULL) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_BAD_REQUEST,
                                      "invalid_json", err.text, NULL);
            return;
        }

        if (!json_is_object(ctx->body)) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_BAD_REQUEST,
                                      "invalid_json",
                                      "the body must be a JSON object", NULL);
            return;
        }
    }

parsed:

    if (!ctx->route->auth) {
        ctx->route->action(ctx);
        return;
    }

    ngx_http_tenant_api_auth(ctx);
}


/* NGX_DECLINED: over 64 KiB (a chunked body has no Content-Length) */

static ngx_int_t
ngx_http_tenant_api_read_body(ngx_http_tenant_api_ctx_t *ctx, ngx_str_t *text)
{
    u_char              *p;
    size_t               len;
    ssize_t              n;
    ngx_buf_t           *b;
    ngx_chain_t         *cl;
    ngx_http_request_t  *r;

    r = ctx->request;

    ngx_str_null(text);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    if (len > NGX_HTTP_TENANT_API_MAX_BODY) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(ctx->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                return NGX_ERROR;
            }

            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    text->len = p - text->data;

    return NGX_OK;
}


/* a request header nginx does not keep a pointer to */

static ngx_table_elt_t *
ngx_http_tenant_api_header(ngx_http_request_t *r, const char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/* the query string's arguments, raw: the actions check them */

static void
ngx_http_tenant_api_args(ngx_http_request_t *r, ngx_http_tenant_api_args_t *a)
{
    static const struct {
        const char  *name;
        size_t       len;
        size_t       offset;
    } known[] = {
        { "limit", 5, offsetof(ngx_http_tenant_api_args_t, limit) },
        { "after", 5, offsetof(ngx_http_tenant_api_args_t, after) },
        { "before", 6, offsetof(ngx_http_tenant_api_args_t, before) },
        { "tenant", 6, offsetof(ngx_http_tenant_api_args_t, tenant) },
        { "status", 6, offsetof(ngx_http_tenant_api_args_t, status) },
        { "lines", 5, offsetof(ngx_http_tenant_api_args_t, lines) },
        { "within_days", 11,
          offsetof(ngx_http_tenant_api_args_t, within_days) },
        { "prefix", 6, offsetof(ngx_http_tenant_api_args_t, prefix) }
    };

    ngx_str_t   *v;
    ngx_uint_t   i;

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        v = (ngx_str_t *) ((u_char *) a + known[i].offset);

        if (ngx_http_arg(r, (u_char *) known[i].name, known[i].len, v)
            != NGX_OK)
        {
            ngx_str_null(v);
        }
    }
}


/*
 * What a session needs of the request, as C strings where they go to the
 * registry: its cookie, X-CSRF-Token, User-Agent (512 bytes at most) and
 * the client's address.
 */

static ngx_int_t
ngx_http_tenant_api_session_request(ngx_http_tenant_api_ctx_t *ctx)
{
    size_t               len;
    u_char              *p;
    ngx_str_t            name, *ua;
    ngx_table_elt_t     *h;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;

    ngx_str_set(&name, NGX_HTTP_TENANT_API_SESSION_COOKIE);

    if (ngx_http_parse_multi_header_lines(&r->headers_in.cookies, &name,
                                          &ctx->cookie)
        == NGX_DECLINED)
    {
        ngx_str_null(&ctx->cookie);
    }

    h = ngx_http_tenant_api_header(r, "X-CSRF-Token", 12);
    if (h) {
        ctx->csrf_header = h->value;
    }

    ua = r->headers_in.user_agent ? &r->headers_in.user_agent->value : NULL;
    len = ua ? ngx_min(ua->len, 512) : 0;

    p = ngx_pnalloc(ctx->pool, len + 1 + ngx_min(c->addr_text.len, 64) + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->user_agent = (const char *) p;
    if (len) {
        p = ngx_cpymem(p, ua->data, len);
    }
    *p++ = '\0';

    ctx->address = (const char *) p;
    p = ngx_cpymem(p, c->addr_text.data, ngx_min(c->addr_text.len, 64));
    *p = '\0';

    return NGX_OK;
}


/* "Authorization: Bearer KEY" or "X-API-Key: KEY" */

static ngx_int_t
ngx_http_tenant_api_key(ngx_http_request_t *r, ngx_str_t *key)
{
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h && h->value.len > 7
        && ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        key->data = h->value.data + 7;
        key->len = h->value.len - 7;
        return NGX_OK;
    }

    h = ngx_http_tenant_api_header(r, "X-API-Key", 9);

    if (h) {
        *key = h->value;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * Keys are "tk_" + 16 hex digits (the key's id) + "_" + 43 base64url
 * characters (the 32-byte secret).  The registry keeps SHA-256 of the
 * secret; it is compared in constant time.
 */

static void
ngx_http_tenant_api_auth(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char        *p;
    ngx_str_t      key;
    ngx_uint_t     i;
    unsigned int   dlen;

    if (ngx_http_tenant_api_key(ctx->request, &key) != NGX_OK) {

        if (ngx_http_tenant_api_session_auth(ctx) == NGX_OK) {
            return;
        }

        ngx_http_tenant_api_error(ctx, NGX_HTTP_UNAUTHORIZED, "unauthorized",
                                  "an API key is required: "
                                  "Authorization: Bearer KEY (or a "
                                  "dashboard session)", NULL);
        return;
    }

    if (key.len != 3 + 16 + 1 + 43
        || ngx_strncmp(key.data, "tk_", 3) != 0 || key.data[19] != '_')
    {
        goto invalid;
    }

    for (i = 3; i < 19; i++) {
        if (!((key.data[i] >= '0' && key.data[i] <= '9')
              || (key.data[i] >= 'a' && key.data[i] <= 'f')))
        {
            goto invalid;
        }
    }

    p = ngx_pnalloc(ctx->pool, 16 + 1 + 4 + 16 + 1);
    if (p == NULL) {
        goto internal;
    }

    ctx->key_id.data = p;
    ctx->key_id.len = 16;
    p = ngx_cpymem(p, key.data + 3, 16);
    *p++ = '\0';

    /* both go to libpq as C strings */

    ctx->actor.data = p;
    ctx->actor.len = 4 + 16;
    p = ngx_cpymem(p, "key:", 4);
    p = ngx_cpymem(p, key.data + 3, 16);
    *p = '\0';

    if (EVP_Digest(key.data + 20, 43, ctx->key_hash, &dlen, EVP_sha256(),
                   NULL)
        != 1 || dlen != 32)
    {
        goto internal;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT encode(key_hash, 'hex'), revoked_at IS NOT NULL, tenant_id"
        " FROM api_keys WHERE id = $1",
        ngx_http_tenant_api_auth_done, 1, ctx->key_id.data);

    return;

invalid:

    ngx_http_tenant_api_error(ctx, NGX_HTTP_UNAUTHORIZED, "unauthorized",
                              "invalid API key", NULL);
    return;

internal:

    ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR, "internal",
                              "cannot check the key", NULL);
}


static void
ngx_http_tenant_api_auth_done(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    u_char      stored[32], *hex;
    ngx_int_t   hi, lo;
    ngx_uint_t  i;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != 64) {
        goto invalid;
    }

    hex = (u_char *) PQgetvalue(res, 0, 0);

    for (i = 0; i < 32; i++) {
        hi = ngx_hextoi(hex + 2 * i, 1);
        lo = ngx_hextoi(hex + 2 * i + 1, 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            goto invalid;
        }

        stored[i] = (u_char) (hi * 16 + lo);
    }

    if (CRYPTO_memcmp(stored, ctx->key_hash, 32) != 0) {
        goto invalid;
    }

    if (PQgetvalue(res, 0, 1)[0] == 't') {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_FORBIDDEN, "key_revoked",
                                  "this API key has been revoked", NULL);
        return;
    }

    if (PQgetisnull(res, 0, 2)) {
        ctx->route->action(ctx);
        return;
    }

    ctx->key_tenant.len = PQgetlength(res, 0, 2);
    ctx->key_tenant.data = ngx_pnalloc(ctx->pool, ctx->key_tenant.len + 1);
    if (ctx->key_tenant.data == NULL) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return;
    }

    *ngx_cpymem(ctx->key_tenant.data, PQgetvalue(res, 0, 2),
                ctx->key_tenant.len) = '\0';

    ngx_http_tenant_api_scope(ctx);
    return;

invalid:

    ngx_http_tenant_api_error(ctx, NGX_HTTP_UNAUTHORIZED, "unauthorized",
                              "invalid API key", NULL);
}



/*
 * A tenant's key: its own tenant's routes only.  Another tenant's, or a
 * job or backup of another, is 404 as if it did not exist, so a key
 * learns no other tenant's name; a platform route is 403.
 */

static void
ngx_http_tenant_api_scope(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t   *arg;
    ngx_uint_t   i;
    const char  *sql;

    arg = &ctx->arg[0];

    switch (ctx->route->scope) {

    case NGX_HTTP_TENANT_API_TENANT:

        if (arg->len != ctx->key_tenant.len
            || ngx_strncmp(arg->data, ctx->key_tenant.data, arg->len) != 0)
        {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND,
                                      "no_such_tenant",
                                      "no tenant has this name", "name");
            return;
        }

        ctx->route->action(ctx);
        return;

    case NGX_HTTP_TENANT_API_OWNED:

        for (i = 0; i < arg->len; i++) {
            if (arg->data[i] < '0' || arg->data[i] > '9') {
                break;
            }
        }

        if (arg->len == 0 || arg->len > 18 || i < arg->len) {
            ngx_http_tenant_api_not_owned(ctx);
            return;
        }

        ctx->owned.data = ngx_pnalloc(ctx->pool, arg->len + 1);
        if (ctx->owned.data == NULL) {
            ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "internal", "out of memory", NULL);
            return;
        }

        ctx->owned.len = arg->len;
        *ngx_cpymem(ctx->owned.data, arg->data, arg->len) = '\0';

        sql = ctx->route->path[0] == 'j'
              ? "SELECT 1 FROM jobs WHERE id = $1::bigint AND tenant_id = $2"
              : "SELECT 1 FROM tenant_backups WHERE id = $1::bigint"
                " AND tenant_id = $2 AND tenant_gone_at IS NULL";

        (void) ngx_http_tenant_api_query(ctx, sql,
                                         ngx_http_tenant_api_owned, 2,
                                         ctx->owned.data,
                                         ctx->key_tenant.data);
        return;

    default:
        ngx_http_tenant_api_error(ctx, NGX_HTTP_FORBIDDEN, "tenant_key",
                                  "this key is bound to one tenant: it may "
                                  "use that tenant's routes only (tenants/"
                                  "{name}, its jobs and backups)", NULL);
    }
}


static void
ngx_http_tenant_api_owned(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_http_tenant_api_not_owned(ctx);
        return;
    }

    ctx->route->action(ctx);
}


/* the answer a job or backup that does not exist gets */

static void
ngx_http_tenant_api_not_owned(ngx_http_tenant_api_ctx_t *ctx)
{
    if (ctx->route->path[0] == 'j') {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_job",
                                  "no job has this id", "id");
        return;
    }

    ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_backup",
                              "no backup has this id", "id");
}


static void
ngx_http_tenant_api_cleanup(void *data)
{
    ngx_http_tenant_api_ctx_t  *ctx = data;

    if (ctx->unwait) {
        ctx->unwait(ctx);
    }

    ctx->request = NULL;

    if (!ctx->in_query) {
        ngx_http_tenant_api_free(ctx);
    }
}


/* $tenant_api_key_id: the key's public id, for limit_req; not checked */

static ngx_int_t
ngx_http_tenant_api_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  key;

    if (ngx_http_tenant_api_key(r, &key) != NGX_OK
        || key.len < 19 || ngx_strncmp(key.data, "tk_", 3) != 0)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = key.data + 3;
    v->len = 16;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tenant_api_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_tenant_api_key_var, 0);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_tenant_api_key_variable;

    return NGX_OK;
}


static char *
ngx_http_tenant_admin_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tenant_api_loc_conf_t  *alcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_tenant_api_handler;

    /* nginx's "default" pool (32 threads), made if nothing else asked */
    alcf->thread_pool = ngx_thread_pool_add(cf, NULL);
    if (alcf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_tenant_api_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_tenant_api_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tenant_api_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->verify_domains = NGX_CONF_UNSET;
    conf->create_limit = NGX_CONF_UNSET_UINT;
    conf->create_window = NGX_CONF_UNSET;
    conf->openapi = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_tenant_api_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_tenant_api_loc_conf_t  *prev = parent;
    ngx_http_tenant_api_loc_conf_t  *conf = child;

    /* on: a tenant proves a custom domain (a DNS TXT record) before it
     * routes; off only where every tenant is trusted */
    ngx_conf_merge_value(conf->verify_domains, prev->verify_domains, 1);
    ngx_conf_merge_uint_value(conf->create_limit, prev->create_limit, 0);
    ngx_conf_merge_value(conf->create_window, prev->create_window, 60);
    ngx_conf_merge_ptr_value(conf->openapi, prev->openapi, NULL);

    return NGX_CONF_OK;
}


/* tenant_admin_api_create_limit number [window]: accepted creates a key may
 * make in a sliding window (default 1m); "off" or 0 for none */

static char *
ngx_http_tenant_api_create_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tenant_api_loc_conf_t  *alcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (alcf->create_limit != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        alcf->create_limit = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number \"%V\": 0-1000000 or \"off\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    alcf->create_limit = n;

    if (cf->args->nelts == 3) {
        alcf->create_window = ngx_parse_time(&value[2], 1);
        if (alcf->create_window == (time_t) NGX_ERROR
            || alcf->create_window < 1 || alcf->create_window > 86400 * 31)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid window \"%V\": 1s-31d", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * tenant_admin_api_openapi file: the API's description, read and checked
 * once at configuration time (the master may block; a worker never reads
 * it), served at GET openapi.json.
 */

static char *
ngx_http_tenant_api_openapi_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tenant_api_loc_conf_t  *alcf = conf;

    json_t              *doc;
    ngx_str_t           *value, path;
    json_error_t         err;
    ngx_pool_cleanup_t  *cln;

    if (alcf->openapi != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    doc = json_load_file((char *) path.data, JSON_REJECT_DUPLICATES, &err);

    if (doc == NULL || !json_is_object(doc)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot load \"%V\": %s (line %d)", &path,
                           doc ? "not a JSON object" : err.text,
                           doc ? 0 : err.line);
        json_decref(doc);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        json_decref(doc);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_tenant_api_json_cleanup;
    cln->data = doc;

    alcf->openapi = doc;

    return NGX_CONF_OK;
}


static void
ngx_http_tenant_api_json_cleanup(void *data)
{
    json_decref(data);
}
