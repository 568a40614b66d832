
/*
 * tenant_cache_api: an operator's window on the cache, JSON in and out.
 *
 *   GET    {location}stats           counters, zone usage, registry state
 *   GET    {location}hosts/{host}    one host's cached entry
 *   DELETE {location}hosts/{host}    drop one host
 *   DELETE {location}tenants/{id}    invalidate every entry of a tenant
 *   DELETE {location}all             invalidate everything
 *
 * Every request needs the token from the file the directive names
 * (Authorization: Bearer ...): on the process driver tenant code runs on
 * loopback too, so an address says nothing about who asks. Restrict it
 * with allow/deny as well: it tells who is a tenant and where they run.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>
#include "ngx_http_tenant_module.h"
#include "ngx_http_tenant_cache.h"
#include "ngx_http_tenant_filter.h"
#include "ngx_http_tenant_host.h"
#include "ngx_http_tenant_pg.h"
#include "ngx_http_tenant_reply.h"
#include "ngx_http_tenant_ssl.h"
#include <openssl/crypto.h>


typedef struct {
    ngx_str_t                       token;
} ngx_http_tenant_cache_api_loc_conf_t;


static ngx_int_t ngx_http_tenant_cache_api_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_tenant_cache_api_stats(ngx_http_request_t *r,
    ngx_http_tenant_cache_t *cache);
static ngx_int_t ngx_http_tenant_cache_api_host(ngx_http_request_t *r,
    ngx_http_tenant_cache_t *cache, ngx_str_t *arg);
static ngx_int_t ngx_http_tenant_cache_api_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message);
static char *ngx_http_tenant_cache_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_http_tenant_cache_api_create_loc_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_tenant_cache_api_allowed(ngx_http_request_t *r);


static ngx_command_t  ngx_http_tenant_cache_api_commands[] = {

    { ngx_string("tenant_cache_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tenant_cache_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tenant_cache_api_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_tenant_cache_api_create_loc_conf, /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_tenant_cache_api_module = {
    NGX_MODULE_V1,
    &ngx_http_tenant_cache_api_module_ctx, /* module context */
    ngx_http_tenant_cache_api_commands,    /* module directives */
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


static ngx_int_t
ngx_http_tenant_cache_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  path, arg;
    ngx_http_tenant_cache_t      *cache;
    ngx_http_tenant_main_conf_t  *tmcf;

    if (ngx_http_tenant_cache_api_allowed(r) != NGX_OK) {
        return ngx_http_tenant_cache_api_error(r, NGX_HTTP_UNAUTHORIZED,
                                               "unauthorized",
                                               "send Authorization: Bearer "
                                               "and the token in the file "
                                               "tenant_cache_api names");
    }

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_module);
    cache = tmcf->shm_zone ? tmcf->shm_zone->data : NULL;

    if (cache == NULL) {
        return ngx_http_tenant_cache_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                               "no_cache",
                                               "no tenant_cache_zone");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_tenant_reply_path(r, &path);

    if (path.len == 5 && ngx_strncmp(path.data, "stats", 5) == 0) {
        if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
            goto not_allowed;
        }

        return ngx_http_tenant_cache_api_stats(r, cache);
    }

    if (path.len > 6 && ngx_strncmp(path.data, "hosts/", 6) == 0) {
        arg.data = path.data + 6;
        arg.len = path.len - 6;

        return ngx_http_tenant_cache_api_host(r, cache, &arg);
    }

    if (path.len > 8 && ngx_strncmp(path.data, "tenants/", 8) == 0) {
        if (r->method != NGX_HTTP_DELETE) {
            goto not_allowed;
        }

        arg.data = path.data + 8;
        arg.len = path.len - 8;

        if (arg.len > 63) {
            return ngx_http_tenant_cache_api_error(r, NGX_HTTP_BAD_REQUEST,
                                                   "bad_tenant",
                                                   "tenant id is too long");
        }

        ngx_http_tenant_cache_purge_tenant(cache, &arg);

        return ngx_http_tenant_reply_json(r, NGX_HTTP_OK,
                   json_pack("{s:s%, s:b}", "tenant", arg.data, arg.len,
                             "purged", 1));
    }

    if (path.len == 3 && ngx_strncmp(path.data, "all", 3) == 0) {
        if (r->method != NGX_HTTP_DELETE) {
            goto not_allowed;
        }

        ngx_http_tenant_cache_purge_all(cache);

        return ngx_http_tenant_reply_json(r, NGX_HTTP_OK,
                                      json_pack("{s:b}", "purged", 1));
    }

    return ngx_http_tenant_cache_api_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                           "no such cache API resource");

not_allowed:

    return ngx_http_tenant_cache_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                           "method_not_allowed",
                                           "method not allowed here");
}


static ngx_int_t
ngx_http_tenant_cache_api_stats(ngx_http_request_t *r,
    ngx_http_tenant_cache_t *cache)
{
    json_t                         *body;
    ngx_http_tenant_cache_sh_t     *sh;
    ngx_http_tenant_filter_t       *f;
    ngx_http_tenant_pg_stats_t      st;
    ngx_http_tenant_main_conf_t    *tmcf;
    ngx_http_tenant_cache_usage_t   u;
    ngx_uint_t                      parsed, cached;
    ngx_http_tenant_certs_t        *certs;
    ngx_http_tenant_ssl_main_conf_t *smcf;

    sh = cache->sh;

    ngx_http_tenant_cache_usage(cache, &u);
    ngx_http_tenant_pg_stats(&st);

    body = json_pack(
        "{s:I, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I},"
        " s:{s:I, s:b}}",
        "entries", (json_int_t) u.entries,
        "bytes",
            "size", (json_int_t) u.size,
            "used", (json_int_t) (u.size - u.free),
            "free", (json_int_t) u.free,
        "hits", (json_int_t) sh->hits,
        "misses", (json_int_t) sh->misses,
        "stale", (json_int_t) sh->stale,
        "evictions", (json_int_t) sh->evictions,
        "zone_full", (json_int_t) sh->zone_full,
        "notifications", (json_int_t) sh->notifications,
        "generation", (json_int_t) u.generation,
        "registry",
            "worker", (json_int_t) ngx_pid,
            "connections", (json_int_t) st.total,
            "idle", (json_int_t) st.idle,
            "busy", (json_int_t) st.busy,
            "connecting", (json_int_t) st.connecting,
            "down", (json_int_t) st.down,
            "queued", (json_int_t) st.queued,
        "listener",
            "pid", (json_int_t) sh->listener_pid,
            "listening", sh->listener_ready != 0);

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_module);

    if (body && tmcf->filter_zone) {
        f = tmcf->filter_zone->data;

        json_object_set_new(body, "host_filter", json_pack(
            "{s:b, s:I, s:I, s:I, s:I}",
            "ready", f->sh->ready != 0,
            "keys", (json_int_t) f->sh->keys,
            "bytes", (json_int_t) f->size,
            "answered", (json_int_t) f->sh->skipped,
            "loads", (json_int_t) f->sh->loads));
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_ssl_module);

    if (body && smcf->zone) {
        certs = smcf->zone->data;
        ngx_http_tenant_ssl_stats(smcf, &parsed, &cached);

        json_object_set_new(body, "certificates", json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
            "count", (json_int_t) certs->sh->count,
            "bytes", (json_int_t) certs->sh->bytes,
            "zone", (json_int_t) certs->size,
            "zone_used", (json_int_t) ngx_http_tenant_certs_used(certs),
            "loads", (json_int_t) certs->sh->loads,
            "refused", (json_int_t) certs->sh->refused,
            "zone_full", (json_int_t) certs->sh->zone_full,
            "parsed_by_worker", (json_int_t) parsed,
            "cached_by_worker", (json_int_t) cached));
    }

    return ngx_http_tenant_reply_json(r, NGX_HTTP_OK, body);
}


static ngx_int_t
ngx_http_tenant_cache_api_host(ngx_http_request_t *r,
    ngx_http_tenant_cache_t *cache, ngx_str_t *arg)
{
    u_char                    *buf;
    void                      *node;
    time_t                     age;
    json_t                    *eps, *ep;
    uint32_t                   serial;
    ngx_int_t                  n, rc;
    ngx_str_t                  host;
    ngx_uint_t                 i;
    ngx_http_tenant_record_t   rec;

    static const char  *roles[] = { "site", "admin" };
    static const char  *statuses[] = { "unknown", "provisioning", "active",
                                       "suspended", "failed", "deleting" };

    buf = ngx_pnalloc(r->pool, NGX_HTTP_TENANT_HOST_MAX);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = ngx_http_tenant_host_normalize(buf, arg->data, arg->len);

    if (n <= 0) {
        return ngx_http_tenant_cache_api_error(r, NGX_HTTP_BAD_REQUEST,
                                               "bad_host",
                                               "not a valid tenant host");
    }

    host.data = buf;
    host.len = n;

    if (r->method == NGX_HTTP_DELETE) {
        rc = ngx_http_tenant_cache_purge_host(cache, &host);

        if (rc != NGX_OK) {
            return ngx_http_tenant_cache_api_error(r, NGX_HTTP_NOT_FOUND,
                                                   "not_cached",
                                                   "host is not cached");
        }

        return ngx_http_tenant_reply_json(r, NGX_HTTP_OK,
                   json_pack("{s:s%, s:b}", "host", host.data, host.len,
                             "purged", 1));
    }

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        return ngx_http_tenant_cache_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                               "method_not_allowed",
                                               "use GET or DELETE");
    }

    ngx_memzero(&rec, sizeof(ngx_http_tenant_record_t));

    rc = ngx_http_tenant_cache_get(cache, &host, r->pool, &rec, &node,
                                   &serial, &age);

    if (rc == NGX_HTTP_TENANT_CACHE_ABSENT) {
        return ngx_http_tenant_cache_api_error(r, NGX_HTTP_NOT_FOUND,
                                               "not_cached",
                                               "host is not cached");
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    eps = json_array();

    for (i = 0; eps && i < rec.nendpoints; i++) {
        ep = json_pack("{s:s%, s:I}", "address", rec.endpoints[i].name.data,
                       rec.endpoints[i].name.len,
                       "weight", (json_int_t) rec.endpoints[i].weight);
        if (ep == NULL || json_array_append_new(eps, ep) != 0) {
            json_decref(eps);
            eps = NULL;
        }
    }

    if (eps == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_tenant_reply_json(r, NGX_HTTP_OK, json_pack(
        "{s:s%, s:s%, s:s, s:s, s:s%, s:o, s:b, s:I}",
        "host", host.data, host.len,
        "tenant", rec.id.data, rec.id.len,
        "role", roles[rec.role & 1],
        "status", statuses[rec.status < 6 ? rec.status : 0],
        "blueprint", rec.blueprint.data, rec.blueprint.len,
        "endpoints", eps,
        "valid", rc == NGX_HTTP_TENANT_CACHE_FRESH,
        "expires_in", (json_int_t) -age));
}


static ngx_int_t
ngx_http_tenant_cache_api_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    return ngx_http_tenant_reply_json(r, status,
               ngx_http_tenant_reply_error(code, message, NULL));
}


/* constant time: a wrong token tells nothing of the right one */

static ngx_int_t
ngx_http_tenant_cache_api_allowed(ngx_http_request_t *r)
{
    ngx_str_t                              *a;
    ngx_http_tenant_cache_api_loc_conf_t   *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_tenant_cache_api_module);

    if (r->headers_in.authorization == NULL) {
        return NGX_DECLINED;
    }

    a = &r->headers_in.authorization->value;

    if (a->len != 7 + clcf->token.len
        || ngx_strncasecmp(a->data, (u_char *) "Bearer ", 7) != 0
        || CRYPTO_memcmp(a->data + 7, clcf->token.data, clcf->token.len)
           != 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static void *
ngx_http_tenant_cache_api_create_loc_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_tenant_cache_api_loc_conf_t));
}


/* tenant_cache_api TOKEN_FILE: the file is read once, here */

static char *
ngx_http_tenant_cache_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tenant_cache_api_loc_conf_t  *alcf = conf;

    u_char                    *p, *last;
    size_t                     size;
    ssize_t                    n;
    ngx_str_t                 *value, path;
    ngx_file_t                 file;
    ngx_file_info_t            fi;
    ngx_http_core_loc_conf_t  *clcf;

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = path;
    file.log = cf->log;

    file.fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open the cache API token file \"%V\"",
                           &path);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    size = (size_t) ngx_file_size(&fi);
    if (size > 1024) {
        ngx_close_file(file.fd);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a token file", &path);
        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, size + 1);
    if (p == NULL) {
        ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, p, size, 0);
    ngx_close_file(file.fd);

    if (n != (ssize_t) size) {
        return NGX_CONF_ERROR;
    }

    last = p + size;
    while (last > p && (last[-1] == '\n' || last[-1] == '\r'
                        || last[-1] == ' '))
    {
        last--;
    }

    if (last - p < 16) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the token in \"%V\" is shorter than 16 bytes",
                           &path);
        return NGX_CONF_ERROR;
    }

    alcf->token.data = p;
    alcf->token.len = last - p;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_tenant_cache_api_handler;

    return NGX_CONF_OK;
}
