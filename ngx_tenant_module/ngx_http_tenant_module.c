
/*
 * ngx_tenant: the nginx face.  Directives, variables and the preaccess
 * phase handler that turns a request's Host into its tenant.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_module.h"
#include "ngx_http_tenant_cache.h"
#include "ngx_http_tenant_reply.h"
#include "ngx_http_tenant_filter.h"
#include "ngx_http_tenant_host.h"
#include "ngx_http_tenant_listen.h"
#include "ngx_http_tenant_lookup.h"
#include "ngx_http_tenant_pg.h"
#include "ngx_http_tenant_ssl.h"
#include "ngx_http_tenant_acme.h"
#include "ngx_http_tenant_traffic.h"
#include "ngx_http_tenant_usage.h"
#include "ngx_http_tenant_conf.h"


static ngx_int_t ngx_http_tenant_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_tenant_resolve(ngx_http_request_t *r,
    ngx_http_tenant_ctx_t *ctx);
static ngx_int_t ngx_http_tenant_match(ngx_http_request_t *r,
    ngx_http_tenant_ctx_t *ctx);
static ngx_int_t ngx_http_tenant_pattern(ngx_http_request_t *r, ngx_str_t *host,
    ngx_str_t *tenant, ngx_uint_t *role);
static ngx_int_t ngx_http_tenant_misdirected(ngx_http_request_t *r,
    ngx_http_tenant_ctx_t *ctx);
static ngx_int_t ngx_http_tenant_route(ngx_http_request_t *r,
    ngx_http_tenant_ctx_t *ctx, ngx_http_tenant_loc_conf_t *tlcf);
static void ngx_http_tenant_lookup_done(ngx_http_tenant_ctx_t *ctx);
static ngx_int_t ngx_http_tenant_acme(ngx_http_request_t *r);
static ngx_int_t ngx_http_tenant_acme_content(ngx_http_request_t *r);
static ngx_int_t ngx_http_tenant_admit(ngx_http_request_t *r,
    ngx_http_tenant_ctx_t *ctx, ngx_http_tenant_loc_conf_t *tlcf);
static ngx_int_t ngx_http_tenant_log_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_tenant_unavailable(ngx_http_request_t *r,
    ngx_uint_t status, time_t retry_after);
static void ngx_http_tenant_cleanup(void *data);

static ngx_int_t ngx_http_tenant_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_http_tenant_add_variables(ngx_conf_t *cf);
static void *ngx_http_tenant_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_tenant_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_tenant_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_tenant_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_tenant_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tenant_host_pattern(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tenant_traffic_zone_set(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_tenant_host_filter(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_tenant_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_tenant_init_process(ngx_cycle_t *cycle);
static void ngx_http_tenant_exit_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_http_tenant_status_bounds = {
    ngx_conf_check_num_bounds, 400, 599
};

static ngx_conf_num_bounds_t  ngx_http_tenant_connections_bounds = {
    ngx_conf_check_num_bounds, 1, 64
};


static ngx_command_t  ngx_http_tenant_commands[] = {

    { ngx_string("tenant_registry"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tenant_main_conf_t, registry),
      NULL },

    { ngx_string("tenant_registry_connections"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tenant_main_conf_t, connections),
      &ngx_http_tenant_connections_bounds },

    { ngx_string("tenant_registry_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tenant_main_conf_t, timeout),
      NULL },

    { ngx_string("tenant_registry_retry"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tenant_main_conf_t, retry),
      NULL },

    { ngx_string("tenant_cache_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tenant_cache_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tenant_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tenant_main_conf_t, ttl),
      NULL },

    { ngx_string("tenant_cache_negative_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tenant_main_conf_t, negative_ttl),
      NULL },

    { ngx_string("tenant_cache_max_stale"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tenant_main_conf_t, max_stale),
      NULL },

    { ngx_string("tenant_host_pattern"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tenant_host_pattern,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tenant_host_filter"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tenant_host_filter,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tenant_traffic_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1234,
      ngx_http_tenant_traffic_zone_set,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tenant"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_loc_conf_t, enable),
      NULL },

    { ngx_string("tenant_unknown_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_loc_conf_t, unknown_status),
      &ngx_http_tenant_status_bounds },

    { ngx_string("tenant_suspended_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_loc_conf_t, suspended_status),
      &ngx_http_tenant_status_bounds },

    { ngx_string("tenant_quota_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_loc_conf_t, quota_status),
      &ngx_http_tenant_status_bounds },

    { ngx_string("tenant_retry_after"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tenant_loc_conf_t, retry_after),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tenant_module_ctx = {
    ngx_http_tenant_add_variables,         /* preconfiguration */
    ngx_http_tenant_init,                  /* postconfiguration */

    ngx_http_tenant_create_main_conf,      /* create main configuration */
    ngx_http_tenant_init_main_conf,        /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_tenant_create_loc_conf,       /* create location configuration */
    ngx_http_tenant_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_tenant_module = {
    NGX_MODULE_V1,
    &ngx_http_tenant_module_ctx,           /* module context */
    ngx_http_tenant_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_tenant_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_tenant_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


#define NGX_HTTP_TENANT_VAR_ID            0
#define NGX_HTTP_TENANT_VAR_ROLE          1
#define NGX_HTTP_TENANT_VAR_STATUS        2
#define NGX_HTTP_TENANT_VAR_BLUEPRINT     3
#define NGX_HTTP_TENANT_VAR_CACHE_STATUS  4
#define NGX_HTTP_TENANT_VAR_HSTS          5


static ngx_http_variable_t  ngx_http_tenant_vars[] = {

    { ngx_string("tenant_id"), NULL, ngx_http_tenant_variable,
      NGX_HTTP_TENANT_VAR_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tenant_role"), NULL, ngx_http_tenant_variable,
      NGX_HTTP_TENANT_VAR_ROLE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tenant_status"), NULL, ngx_http_tenant_variable,
      NGX_HTTP_TENANT_VAR_STATUS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tenant_blueprint"), NULL, ngx_http_tenant_variable,
      NGX_HTTP_TENANT_VAR_BLUEPRINT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tenant_cache_status"), NULL, ngx_http_tenant_variable,
      NGX_HTTP_TENANT_VAR_CACHE_STATUS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* for add_header Strict-Transport-Security $tenant_hsts always; */
    { ngx_string("tenant_hsts"), NULL, ngx_http_tenant_variable,
      NGX_HTTP_TENANT_VAR_HSTS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_tenant_status_names[] = {
    ngx_string("unknown"),
    ngx_string("provisioning"),
    ngx_string("active"),
    ngx_string("suspended"),
    ngx_string("failed"),
    ngx_string("deleting")
};


static ngx_str_t  ngx_http_tenant_cache_status_names[] = {
    ngx_null_string,
    ngx_string("HIT"),
    ngx_string("MISS"),
    ngx_string("EXPIRED"),
    ngx_string("STALE"),
    ngx_string("NEGATIVE"),
    ngx_string("ERROR")
};


static ngx_str_t  ngx_http_tenant_hsts = ngx_string("max-age=31536000");


static ngx_str_t  ngx_http_tenant_role_names[] = {
    ngx_string("site"),
    ngx_string("admin")
};


static ngx_int_t
ngx_http_tenant_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_pool_cleanup_t          *cln;
    ngx_http_tenant_ctx_t       *ctx;
    ngx_http_tenant_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tenant_module);

    if (!tlcf->enable || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_tenant_get_ctx(r);

    /* an ACME HTTP-01 answer comes before tenant routing */
    if (ctx == NULL && ngx_http_tenant_acme(r) == NGX_OK) {
        return NGX_DECLINED;
    }

    if (ctx == NULL) {
        cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_tenant_ctx_t));
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx = cln->data;
        ngx_memzero(ctx, sizeof(ngx_http_tenant_ctx_t));
        ctx->request = r;

        cln->handler = ngx_http_tenant_cleanup;

        ngx_http_set_ctx(r, ctx, ngx_http_tenant_module);

        rc = ngx_http_tenant_resolve(r, ctx);

        if (rc != NGX_OK) {
            return rc;
        }

    } else if (ctx->waiting) {
        return NGX_AGAIN;
    }

    return ngx_http_tenant_route(r, ctx, tlcf);
}


/*
 * Finds the request's tenant: NGX_OK when ctx holds the answer (or the
 * registry failed), NGX_AGAIN while a registry look-up is under way, or an
 * HTTP status.
 */

static ngx_int_t
ngx_http_tenant_resolve(ngx_http_request_t *r, ngx_http_tenant_ctx_t *ctx)
{
    u_char                       *buf;
    time_t                        age;
    ngx_int_t                     rc, n;
    ngx_str_t                     host, location;
    ngx_http_tenant_cache_t      *cache;
    ngx_http_tenant_filter_t     *filter;
    ngx_http_tenant_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_module);
    cache = tmcf->shm_zone->data;

    buf = ngx_pnalloc(r->pool, NGX_HTTP_TENANT_HOST_MAX);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * Route by the authority nginx uses for $host: the absolute request
     * URI's, else the Host header's.  nginx drops a Host port without
     * looking at it, so the raw header is checked here, port included.
     */

    if (r->host_start && r->host_end) {
        /* the absolute URI's authority, port included, up to the path */
        host.data = r->host_start;
        host.len = ((r->uri_start > r->host_end) ? r->uri_start : r->host_end)
                   - r->host_start;

        if (host.len && host.data[host.len - 1] == '/') {
            host.len--;
        }

    } else if (r->headers_in.host) {
        host = r->headers_in.host->value;

    } else {
        host = r->headers_in.server;
    }

    n = ngx_http_tenant_host_normalize(buf, host.data, host.len);

    if (n == NGX_ERROR) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "tenant: bad host \"%V\"", &host);
        return NGX_HTTP_BAD_REQUEST;
    }

    if (n == 0) {
        /* IP literal: never a tenant, and no reason to ask the registry */
        ctx->resolved = 1;
        ctx->record.status = NGX_HTTP_TENANT_UNKNOWN;
        return NGX_OK;
    }

    ctx->host.data = buf;
    ctx->host.len = n;

    /* tenant_ssl_redirect: hosts with a certificate are HTTPS-only */
    rc = ngx_http_tenant_ssl_redirect_to(r, &ctx->host, &location);

    if (rc == NGX_OK) {
        if (ngx_http_tenant_reply_header(r, "Location", location.len + 1,
                                         "%V", &location)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_MOVED_PERMANENTLY;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_tenant_cache_get(cache, &ctx->host, r->pool, &ctx->record,
                                   &ctx->node, &ctx->serial, &age);

    switch (rc) {

    case NGX_HTTP_TENANT_CACHE_FRESH:
        ctx->resolved = 1;
        ctx->cache_status = (ctx->record.status == NGX_HTTP_TENANT_UNKNOWN)
                            ? NGX_HTTP_TENANT_CACHE_NEGATIVE
                            : NGX_HTTP_TENANT_CACHE_HIT;
        (void) ngx_atomic_fetch_add(&cache->sh->hits, 1);
        return NGX_OK;

    case NGX_HTTP_TENANT_CACHE_OLD:
        /* kept in case the registry does not answer (stale-if-error) */
        ctx->stale = (age <= tmcf->max_stale);
        ctx->cache_status = NGX_HTTP_TENANT_CACHE_EXPIRED;
        break;

    case NGX_HTTP_TENANT_CACHE_ABSENT:
        ctx->cache_status = NGX_HTTP_TENANT_CACHE_MISS;
        break;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_atomic_fetch_add(&cache->sh->misses, 1);

    /* the patterns matter to the registry query only: hits skip them */

    if (ngx_http_tenant_match(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * A host no tenant has, by the set of every routable host, is unknown
     * without asking the registry: a flood of random hosts stays here.
     */
    filter = tmcf->filter_zone ? tmcf->filter_zone->data : NULL;

    if (rc == NGX_HTTP_TENANT_CACHE_ABSENT && filter
        && ngx_http_tenant_filter_test(filter, 'h', &ctx->host) == 0
        && (ctx->tenant.len == 0
            || ngx_http_tenant_filter_test(filter, 't', &ctx->tenant) == 0))
    {
        (void) ngx_atomic_fetch_add(&filter->sh->skipped, 1);
        ctx->resolved = 1;
        ctx->record.status = NGX_HTTP_TENANT_UNKNOWN;
        ctx->cache_status = NGX_HTTP_TENANT_CACHE_NEGATIVE;
        return NGX_OK;
    }

    ctx->handler = ngx_http_tenant_lookup_done;

    rc = ngx_http_tenant_lookup_start(tmcf->lookups, ctx);

    switch (rc) {

    case NGX_AGAIN:
        /* a client that leaves while waiting is noticed and finalized */
        r->read_event_handler = ngx_http_test_reading;
        return NGX_AGAIN;

    case NGX_DECLINED:
        ctx->failed = 1;
        return NGX_OK;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static ngx_int_t
ngx_http_tenant_match(ngx_http_request_t *r, ngx_http_tenant_ctx_t *ctx)
{
    ctx->role = NGX_HTTP_TENANT_ROLE_SITE;

    return ngx_http_tenant_pattern(r, &ctx->host, &ctx->tenant, &ctx->role);
}


/* the tenant and role a host pattern gives host (tenant empty: none) */

static ngx_int_t
ngx_http_tenant_pattern(ngx_http_request_t *r, ngx_str_t *host,
    ngx_str_t *tenant, ngx_uint_t *role)
{
    int                          *caps;
    ngx_int_t                     rc, rl;
    ngx_uint_t                    i;
    ngx_http_tenant_pattern_t    *pat;
    ngx_http_tenant_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_module);

    ngx_str_null(tenant);

    pat = tmcf->patterns.elts;

    for (i = 0; i < tmcf->patterns.nelts; i++) {

        caps = ngx_palloc(r->pool, (pat[i].captures + 1) * 3 * sizeof(int));
        if (caps == NULL) {
            return NGX_ERROR;
        }

        rc = ngx_regex_exec(pat[i].regex, host, caps,
                            (pat[i].captures + 1) * 3);

        if (rc == NGX_REGEX_NO_MATCHED) {
            continue;
        }

        if (rc < 0) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          ngx_regex_exec_n " failed: %i on \"%V\" using "
                          "\"%V\"", rc, host, &pat[i].source);
            return NGX_ERROR;
        }

        if (pat[i].tenant < rc && caps[2 * pat[i].tenant] >= 0) {
            tenant->data = host->data + caps[2 * pat[i].tenant];
            tenant->len = caps[2 * pat[i].tenant + 1]
                          - caps[2 * pat[i].tenant];
        }

        if (pat[i].role > 0 && pat[i].role < rc
            && caps[2 * pat[i].role] >= 0)
        {
            rl = ngx_http_tenant_role_parse(
                           host->data + caps[2 * pat[i].role],
                           caps[2 * pat[i].role + 1] - caps[2 * pat[i].role]);

            if (rl != NGX_ERROR) {
                *role = rl;
            }
        }

        return NGX_OK;
    }

    return NGX_OK;
}


/*
 * A request over TLS must be for the tenant of the name its connection was
 * made for: a client that reuses one connection (or one certificate) for
 * another tenant's Host gets 421.  The name's tenant comes from a host
 * pattern, else from the tenant's own certificate for it.
 */

static ngx_int_t
ngx_http_tenant_misdirected(ngx_http_request_t *r, ngx_http_tenant_ctx_t *ctx)
{
    u_char      buf[NGX_HTTP_TENANT_HOST_MAX];
    ngx_str_t   name, tenant;
    ngx_uint_t  role;

    name.data = buf;
    name.len = ngx_http_tenant_ssl_name(r, buf);

    if (name.len == 0
        || (name.len == ctx->host.len
            && ngx_strncmp(name.data, ctx->host.data, name.len) == 0))
    {
        return NGX_OK;
    }

    if (ngx_http_tenant_pattern(r, &name, &tenant, &role) != NGX_OK) {
        return NGX_ERROR;
    }

    if (tenant.len == 0
        && ngx_http_tenant_ssl_cert_tenant(r, name.data, name.len, &tenant)
           != NGX_OK)
    {
        ngx_str_null(&tenant);
    }

    if (tenant.len == ctx->record.id.len
        && ngx_strncmp(tenant.data, ctx->record.id.data, tenant.len) == 0)
    {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "tenant: Host \"%V\" (tenant \"%V\") on a TLS connection "
                  "for \"%V\": 421", &ctx->host, &ctx->record.id, &name);

    return NGX_DECLINED;
}


/* the platform domain this host is at, under or above, if any */

ngx_str_t *
ngx_http_tenant_host_in_domain(ngx_http_tenant_main_conf_t *tmcf,
    u_char *host, size_t len)
{
    ngx_str_t                    *d;
    ngx_uint_t                    i;
    ngx_http_tenant_pattern_t    *pat;

    pat = tmcf->patterns.elts;

    for (i = 0; i < tmcf->patterns.nelts; i++) {
        d = &pat[i].domain;

        if (d->len == 0) {
            continue;
        }

        if (len == d->len && ngx_strncmp(host, d->data, len) == 0) {
            return d;
        }

        if (len > d->len && host[len - d->len - 1] == '.'
            && ngx_strncmp(host + len - d->len, d->data, d->len) == 0)
        {
            return d;
        }

        if (d->len > len && d->data[d->len - len - 1] == '.'
            && ngx_strncmp(d->data + d->len - len, host, len) == 0)
        {
            return d;
        }
    }

    return NULL;
}


/* does a host pattern claim this host?  Then it is no custom domain */

ngx_uint_t
ngx_http_tenant_host_is_platform(ngx_http_tenant_main_conf_t *tmcf,
    u_char *host, size_t len)
{
    ngx_str_t                     s;
    ngx_uint_t                    i;
    ngx_http_tenant_pattern_t    *pat;

    s.data = host;
    s.len = len;

    pat = tmcf->patterns.elts;

    for (i = 0; i < tmcf->patterns.nelts; i++) {
        if (ngx_regex_exec(pat[i].regex, &s, NULL, 0) >= 0) {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_tenant_route(ngx_http_request_t *r, ngx_http_tenant_ctx_t *ctx,
    ngx_http_tenant_loc_conf_t *tlcf)
{
    ngx_int_t                     rc;
    ngx_http_tenant_cache_t      *cache;
    ngx_http_tenant_main_conf_t  *tmcf;

    if (ctx->failed) {
        if (!ctx->stale) {
            ctx->cache_status = NGX_HTTP_TENANT_CACHE_ERROR;

            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "tenant: registry unavailable for \"%V\"",
                          &ctx->host);

            return ngx_http_tenant_unavailable(r,
                                               NGX_HTTP_SERVICE_UNAVAILABLE,
                                               tlcf->retry_after);
        }

        /* serve what the cache had (stale-if-error) */

        ctx->failed = 0;
        ctx->resolved = 1;
        ctx->cache_status = NGX_HTTP_TENANT_CACHE_STALE;

        tmcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_module);
        cache = tmcf->shm_zone->data;
        (void) ngx_atomic_fetch_add(&cache->sh->stale, 1);
    }

    if (ctx->record.id.len
        && ngx_http_tenant_misdirected(r, ctx) != NGX_OK)
    {
        return NGX_HTTP_MISDIRECTED_REQUEST;
    }

    if (ctx->record.id.len) {
        rc = ngx_http_tenant_admit(r, ctx, tlcf);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    switch (ctx->record.status) {

    case NGX_HTTP_TENANT_ACTIVE:
        if (ctx->record.nendpoints == 0) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "tenant: \"%V\" has no %V endpoint", &ctx->record.id,
                          &ngx_http_tenant_role_names[ctx->record.role]);

            return ngx_http_tenant_unavailable(r,
                                               NGX_HTTP_SERVICE_UNAVAILABLE,
                                               tlcf->retry_after);
        }

        return NGX_DECLINED;

    case NGX_HTTP_TENANT_PROVISIONING:
        return ngx_http_tenant_unavailable(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           tlcf->retry_after);

    case NGX_HTTP_TENANT_SUSPENDED:
        return ngx_http_tenant_unavailable(r, tlcf->suspended_status,
                                           tlcf->retry_after);

    default:
        return tlcf->unknown_status;
    }
}


/*
 * The tenant's limits, where a tenant_traffic_zone keeps their state: only
 * a request that would reach the tenant's stack is held to them, but every
 * request of a tenant is counted.
 */

static ngx_int_t
ngx_http_tenant_admit(ngx_http_request_t *r, ngx_http_tenant_ctx_t *ctx,
    ngx_http_tenant_loc_conf_t *tlcf)
{
    time_t                        retry_after;
    ngx_int_t                     rc;
    ngx_http_tenant_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_module);

    if (tmcf->traffic_zone == NULL) {
        return NGX_DECLINED;
    }

    retry_after = 1;

    rc = ngx_http_tenant_traffic_admit(tmcf->traffic_zone->data, ctx,
                                       ctx->record.status
                                           == NGX_HTTP_TENANT_ACTIVE
                                       && ctx->record.nendpoints,
                                       &retry_after);

    if (rc == NGX_OK) {
        return NGX_DECLINED;
    }

    if (ngx_http_tenant_reply_header(r, "Retry-After", NGX_TIME_T_LEN, "%T",
                                     retry_after)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "tenant: \"%V\" is over its %s limit", &ctx->record.id,
                  ctx->refused == NGX_HTTP_TENANT_REFUSED_QUOTA ? "monthly"
                  : ctx->refused == NGX_HTTP_TENANT_REFUSED_CONNS
                    ? "connections" : "rate");

    return (ctx->refused == NGX_HTTP_TENANT_REFUSED_QUOTA)
           ? (ngx_int_t) tlcf->quota_status : NGX_HTTP_TOO_MANY_REQUESTS;
}


static ngx_int_t
ngx_http_tenant_log_handler(ngx_http_request_t *r)
{
    ngx_http_tenant_ctx_t        *ctx;
    ngx_http_tenant_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_module);

    if (tmcf->traffic_zone == NULL) {
        return NGX_OK;
    }

    ctx = ngx_http_tenant_get_ctx(r);

    if (ctx) {
        ngx_http_tenant_traffic_count(tmcf->traffic_zone->data, r, ctx);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tenant_unavailable(ngx_http_request_t *r, ngx_uint_t status,
    time_t retry_after)
{
    if (status == NGX_HTTP_SERVICE_UNAVAILABLE && retry_after > 0
        && ngx_http_tenant_reply_header(r, "Retry-After", NGX_TIME_T_LEN, "%T",
                                        retry_after)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return status;
}


/*
 * GET /.well-known/acme-challenge/{token} with an answer in the store for
 * the host: the request's content is that answer, whatever the location's
 * content handler.  The answer waits for the content phase in the TLS
 * module's context slot, which requests do not otherwise use.
 */

static ngx_int_t
ngx_http_tenant_acme(ngx_http_request_t *r)
{
    u_char                   *buf;
    ngx_int_t                 n;
    ngx_str_t                 host, token, *answer;
    ngx_http_tenant_certs_t  *certs;

    if (r->uri.len <= sizeof(NGX_HTTP_TENANT_ACME_PREFIX) - 1
        || ngx_strncmp(r->uri.data, NGX_HTTP_TENANT_ACME_PREFIX,
                       sizeof(NGX_HTTP_TENANT_ACME_PREFIX) - 1)
           != 0
        || (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD))
    {
        return NGX_DECLINED;
    }

    certs = ngx_http_tenant_ssl_store(r);

    if (certs == NULL || r->headers_in.host == NULL) {
        return NGX_DECLINED;
    }

    buf = ngx_pnalloc(r->pool, NGX_HTTP_TENANT_HOST_MAX);
    answer = ngx_palloc(r->pool, sizeof(ngx_str_t));
    if (buf == NULL || answer == NULL) {
        return NGX_ERROR;
    }

    host = r->headers_in.host->value;
    n = ngx_http_tenant_host_normalize(buf, host.data, host.len);

    if (n <= 0) {
        return NGX_DECLINED;
    }

    host.data = buf;
    host.len = n;
    token.data = r->uri.data + sizeof(NGX_HTTP_TENANT_ACME_PREFIX) - 1;
    token.len = r->uri.len - (sizeof(NGX_HTTP_TENANT_ACME_PREFIX) - 1);

    if (ngx_http_tenant_acme_answer(certs, &host, &token, r->pool, answer)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_http_set_ctx(r, answer, ngx_http_tenant_ssl_module);
    r->content_handler = ngx_http_tenant_acme_content;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tenant_acme_content(ngx_http_request_t *r)
{
    ngx_int_t   rc;
    ngx_str_t  *answer;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    answer = ngx_http_get_module_ctx(r, ngx_http_tenant_ssl_module);

    return ngx_http_tenant_reply_text(r, NGX_HTTP_OK, answer);
}


static void
ngx_http_tenant_lookup_done(ngx_http_tenant_ctx_t *ctx)
{
    ngx_http_request_t  *r;

    r = ctx->request;

    /* resume the phases from the event loop, not from inside the look-up */

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_post_event(r->connection->write, &ngx_posted_events);
}


static void
ngx_http_tenant_cleanup(void *data)
{
    ngx_http_tenant_ctx_t  *ctx = data;

    ngx_http_tenant_lookup_cancel(ctx);
}


/*
 * An internal redirect (error_page, try_files) clears module contexts; the
 * context is also the data of a pool cleanup, which survives, so the
 * variables keep their values in the access log and error pages.
 */

ngx_http_tenant_ctx_t *
ngx_http_tenant_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t     *cln;
    ngx_http_tenant_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_tenant_module);

    if (ctx) {
        return ctx;
    }

    for (cln = r->main->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_tenant_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r->main, ctx, ngx_http_tenant_module);
            return ctx;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_tenant_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t               *s;
    ngx_http_tenant_ctx_t   *ctx;

    ctx = ngx_http_tenant_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = NULL;

    switch (data) {

    case NGX_HTTP_TENANT_VAR_ID:
        s = &ctx->record.id;
        break;

    case NGX_HTTP_TENANT_VAR_ROLE:
        s = &ngx_http_tenant_role_names[ctx->resolved ? ctx->record.role
                                                      : ctx->role];
        break;

    case NGX_HTTP_TENANT_VAR_STATUS:
        if (ctx->resolved) {
            s = &ngx_http_tenant_status_names[ctx->record.status];
        }
        break;

    case NGX_HTTP_TENANT_VAR_BLUEPRINT:
        s = &ctx->record.blueprint;
        break;

    case NGX_HTTP_TENANT_VAR_CACHE_STATUS:
        s = &ngx_http_tenant_cache_status_names[ctx->cache_status];
        break;

    case NGX_HTTP_TENANT_VAR_HSTS:
        /* over HTTPS only: a browser ignores it on plain HTTP anyway */
        if (ctx->record.hsts && r->connection->ssl) {
            s = &ngx_http_tenant_hsts;
        }
        break;
    }

    if (s == NULL || s->len == 0 || (data != NGX_HTTP_TENANT_VAR_CACHE_STATUS
                                     && data != NGX_HTTP_TENANT_VAR_ROLE
                                     && !ctx->resolved))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tenant_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_tenant_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_tenant_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_tenant_main_conf_t  *tmcf;

    tmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tenant_main_conf_t));
    if (tmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     tmcf->registry = { 0, NULL };
     *     tmcf->shm_zone = NULL;
     */

    tmcf->connections = NGX_CONF_UNSET_UINT;
    tmcf->timeout = NGX_CONF_UNSET_MSEC;
    tmcf->retry = NGX_CONF_UNSET_MSEC;
    tmcf->ttl = NGX_CONF_UNSET;
    tmcf->negative_ttl = NGX_CONF_UNSET;
    tmcf->max_stale = NGX_CONF_UNSET;

    if (ngx_array_init(&tmcf->patterns, cf->pool, 2,
                       sizeof(ngx_http_tenant_pattern_t))
        != NGX_OK)
    {
        return NULL;
    }

    return tmcf;
}


static char *
ngx_http_tenant_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_tenant_main_conf_t  *tmcf = conf;

    ngx_http_tenant_cache_t  *cache;

    ngx_conf_init_uint_value(tmcf->connections, 2);
    ngx_conf_init_msec_value(tmcf->timeout, 1000);
    ngx_conf_init_msec_value(tmcf->retry, 5000);
    ngx_conf_init_value(tmcf->ttl, 60);
    ngx_conf_init_value(tmcf->negative_ttl, 5);
    ngx_conf_init_value(tmcf->max_stale, 3600);

    if (tmcf->shm_zone) {
        cache = tmcf->shm_zone->data;
        cache->ttl = tmcf->ttl;
        cache->negative_ttl = tmcf->negative_ttl;
        cache->max_stale = tmcf->max_stale;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_tenant_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_tenant_loc_conf_t  *tlcf;

    tlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tenant_loc_conf_t));
    if (tlcf == NULL) {
        return NULL;
    }

    tlcf->enable = NGX_CONF_UNSET;
    tlcf->unknown_status = NGX_CONF_UNSET_UINT;
    tlcf->suspended_status = NGX_CONF_UNSET_UINT;
    tlcf->retry_after = NGX_CONF_UNSET;
    tlcf->quota_status = NGX_CONF_UNSET_UINT;

    return tlcf;
}


static char *
ngx_http_tenant_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_tenant_loc_conf_t  *prev = parent;
    ngx_http_tenant_loc_conf_t  *conf = child;

    ngx_http_tenant_main_conf_t  *tmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->unknown_status, prev->unknown_status,
                              NGX_HTTP_NOT_FOUND);
    ngx_conf_merge_uint_value(conf->suspended_status, prev->suspended_status,
                              NGX_HTTP_SERVICE_UNAVAILABLE);
    ngx_conf_merge_value(conf->retry_after, prev->retry_after, 30);
    ngx_conf_merge_uint_value(conf->quota_status, prev->quota_status,
                              NGX_HTTP_TOO_MANY_REQUESTS);

    if (conf->enable) {
        tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tenant_module);

        if (tmcf->shm_zone == NULL || tmcf->registry.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"tenant on\" needs \"tenant_cache_zone\" "
                               "and \"tenant_registry\" in the http block");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* tenant_cache_zone name:size */

static char *
ngx_http_tenant_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tenant_main_conf_t  *tmcf = conf;

    ssize_t                   size;
    ngx_str_t                *value, name;
    ngx_http_tenant_cache_t  *cache;

    if (tmcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_tenant_conf_zone(cf, &value[1], 8 * ngx_pagesize, &name,
                                  &size)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_http_tenant_cache_t));
    if (cache == NULL) {
        return NGX_CONF_ERROR;
    }

    tmcf->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                           &ngx_http_tenant_module);
    if (tmcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (tmcf->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    tmcf->shm_zone->init = ngx_http_tenant_cache_init_zone;
    tmcf->shm_zone->data = cache;

    /* survives reloads only while the zone keeps its name and size */
    tmcf->shm_zone->noreuse = 0;

    return NGX_CONF_OK;
}


/* tenant_traffic_zone name:size [series=N] [series_idle=TIME] [sync=TIME|off] */

static char *
ngx_http_tenant_traffic_zone_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tenant_main_conf_t  *tmcf = conf;

    if (tmcf->traffic_zone) {
        return "is duplicate";
    }

    return ngx_http_tenant_traffic_zone(cf, cf->args->elts,
                                        &ngx_http_tenant_module,
                                        &tmcf->traffic_zone);
}


/* tenant_host_filter name:size */

static char *
ngx_http_tenant_host_filter(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tenant_main_conf_t  *tmcf = conf;

    ngx_str_t  *value;

    if (tmcf->filter_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    return ngx_http_tenant_filter_zone(cf, &value[1], &tmcf->filter_zone);
}


/* tenant_host_pattern regex, with a named capture "tenant", maybe "role" */

static char *
ngx_http_tenant_host_pattern(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tenant_main_conf_t  *tmcf = conf;

    u_char                      errstr[NGX_MAX_CONF_ERRSTR], *p;
    size_t                      len;
    ngx_int_t                   i, idx;
    ngx_str_t                  *value;
    ngx_regex_compile_t         rc;
    ngx_http_tenant_pattern_t  *pat;

    value = cf->args->elts;

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = value[1];
    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V", &rc.err);
        return NGX_CONF_ERROR;
    }

    pat = ngx_array_push(&tmcf->patterns);
    if (pat == NULL) {
        return NGX_CONF_ERROR;
    }

    pat->regex = rc.regex;
    pat->source = value[1];
    pat->captures = rc.captures;
    pat->tenant = -1;
    pat->role = -1;

    /* names table: 2-byte big-endian capture index, then the NUL-ended name */

    p = rc.names;

    for (i = 0; i < rc.named_captures; i++, p += rc.name_size) {
        idx = 256 * p[0] + p[1];
        len = ngx_strlen(&p[2]);

        if (len == 6 && ngx_strncmp(&p[2], "tenant", 6) == 0) {
            pat->tenant = idx;

        } else if (len == 4 && ngx_strncmp(&p[2], "role", 4) == 0) {
            pat->role = idx;
        }
    }

    if (pat->tenant == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "pattern \"%V\" has no (?<tenant>...) capture",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    /*
     * The pattern's literal tail, "\.shop\.example\.com$", names the
     * platform's domain: no custom domain may sit at, under or above it.
     */
    ngx_str_null(&pat->domain);

    len = value[1].len;
    if (len && value[1].data[len - 1] == '$') {
        len--;
    }

    for (i = len; i > 0; i--) {
        u_char  ch = value[1].data[i - 1];

        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-') {
            continue;
        }

        if (ch == '.' && i >= 2 && value[1].data[i - 2] == '\\') {
            i--;
            continue;
        }

        break;
    }

    if ((size_t) i + 2 < len && value[1].data[i] == '\\') {
        pat->domain.data = ngx_pnalloc(cf->pool, len - i);
        if (pat->domain.data == NULL) {
            return NGX_CONF_ERROR;
        }

        for (p = &value[1].data[i + 2]; p < value[1].data + len; p++) {
            if (*p != '\\') {
                pat->domain.data[pat->domain.len++] = *p;
            }
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_tenant_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * Preaccess, so limit_req and limit_conn keyed by $tenant_id see the
     * tenant: handlers added last run first within a phase.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_tenant_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_tenant_log_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tenant_init_process(ngx_cycle_t *cycle)
{
    ngx_http_tenant_cache_t      *cache;
    ngx_http_tenant_filter_t     *filter;
    ngx_http_tenant_traffic_t    *tt;
    ngx_http_tenant_main_conf_t  *tmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    tmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_tenant_module);

    if (tmcf == NULL || tmcf->registry.len == 0) {
        return NGX_OK;
    }

    if (ngx_http_tenant_pg_init_process(cycle, &tmcf->registry,
                                        tmcf->connections, tmcf->timeout,
                                        tmcf->retry)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * The zone's data of this cycle: a worker respawned after a reload
     * that failed must not see what the failed cycle had allocated.
     */

    if (tmcf->shm_zone) {
        cache = tmcf->shm_zone->data;
        filter = tmcf->filter_zone ? tmcf->filter_zone->data : NULL;

        tmcf->lookups = ngx_http_tenant_lookup_init_process(cycle, cache);
        tmcf->listen = ngx_http_tenant_listen_init_process(cycle, cache,
                                           filter,
                                           ngx_http_tenant_ssl_certs(cycle),
                                           tmcf->jwt_zone
                                           ? tmcf->jwt_zone->data : NULL);

        if (tmcf->lookups == NULL || tmcf->listen == NULL) {
            return NGX_ERROR;
        }
    }

    if (tmcf->traffic_zone == NULL) {
        return NGX_OK;
    }

    tt = tmcf->traffic_zone->data;

    if (ngx_http_tenant_traffic_init_process(cycle, tt) != NGX_OK) {
        return NGX_ERROR;
    }

    if (tt->sync) {
        tmcf->usage = ngx_http_tenant_usage_init_process(cycle, tt);
        if (tmcf->usage == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_tenant_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_tenant_main_conf_t  *tmcf;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_tenant_module);

    if (tmcf && tmcf->listen) {
        ngx_http_tenant_listen_exit_process(tmcf->listen);
    }

    if (tmcf && tmcf->usage) {
        ngx_http_tenant_usage_exit_process(tmcf->usage);
    }

    if (tmcf && tmcf->traffic_zone) {
        ngx_http_tenant_traffic_exit_process(tmcf->traffic_zone->data);
    }

    ngx_http_tenant_pg_exit_process();
}
