
/*
 * tenant_upstream: an upstream {} whose peers are the current request's
 * tenant endpoints.  Balancer state (smooth weighted round robin, failures)
 * lives in the shared cache entry, so all workers agree on it.  Put
 * "keepalive" after "tenant_upstream": keepalive wraps the balancer that is
 * set when it is read.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_module.h"
#include "ngx_http_tenant_cache.h"


typedef struct {
    ngx_uint_t                      max_fails;
    time_t                          fail_timeout;
} ngx_http_tenant_upstream_srv_conf_t;


typedef struct {
    ngx_http_tenant_ctx_t                *ctx;
    ngx_http_tenant_cache_t              *cache;    /* the entry's zone */
    ngx_http_tenant_upstream_srv_conf_t  *conf;
    uint64_t                              tried;
    ngx_uint_t                            current;
} ngx_http_tenant_upstream_peer_data_t;


static ngx_int_t ngx_http_tenant_upstream_init(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_tenant_upstream_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_tenant_upstream_get_peer(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_tenant_upstream_free_peer(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state);
static void *ngx_http_tenant_upstream_create_conf(ngx_conf_t *cf);
static char *ngx_http_tenant_upstream(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_tenant_upstream_commands[] = {

    { ngx_string("tenant_upstream"),
      NGX_HTTP_UPS_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE12,
      ngx_http_tenant_upstream,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tenant_upstream_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_tenant_upstream_create_conf,  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_tenant_upstream_module = {
    NGX_MODULE_V1,
    &ngx_http_tenant_upstream_module_ctx,  /* module context */
    ngx_http_tenant_upstream_commands,     /* module directives */
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
ngx_http_tenant_upstream_init(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us)
{
    if (us->servers->nelts != 1) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"server\" cannot be used in upstream \"%V\" "
                      "with \"tenant_upstream\"", &us->host);
        return NGX_ERROR;
    }

    us->peer.init = ngx_http_tenant_upstream_init_peer;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tenant_upstream_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_http_tenant_ctx_t                 *ctx;
    ngx_http_tenant_main_conf_t           *tmcf;
    ngx_http_tenant_upstream_peer_data_t  *tp;

    ctx = ngx_http_tenant_get_ctx(r);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_module);

    if (ctx == NULL || !ctx->resolved || ctx->record.nendpoints == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "tenant: no tenant endpoints for upstream \"%V\" "
                      "(is \"tenant on\" set in this location?)", &us->host);
        return NGX_ERROR;
    }

    tp = ngx_palloc(r->pool, sizeof(ngx_http_tenant_upstream_peer_data_t));
    if (tp == NULL) {
        return NGX_ERROR;
    }

    tp->ctx = ctx;
    tp->cache = tmcf->shm_zone ? tmcf->shm_zone->data : NULL;
    tp->conf = ngx_http_conf_upstream_srv_conf(us,
                                            ngx_http_tenant_upstream_module);
    tp->tried = 0;
    tp->current = 0;

    r->upstream->peer.data = tp;
    r->upstream->peer.get = ngx_http_tenant_upstream_get_peer;
    r->upstream->peer.free = ngx_http_tenant_upstream_free_peer;
    r->upstream->peer.tries = ctx->record.nendpoints;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tenant_upstream_get_peer(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_tenant_upstream_peer_data_t  *tp = data;

    ngx_int_t                    i;
    ngx_uint_t                   n, k;
    ngx_http_tenant_ctx_t       *ctx;
    ngx_http_tenant_endpoint_t  *ep;

    ctx = tp->ctx;
    n = ctx->record.nendpoints;

    pc->cached = 0;
    pc->connection = NULL;

    if (n == 1) {
        /*
         * As with a single server: never marked down, and tried again when
         * nginx grants another try (a cached keepalive connection that the
         * backend had closed).
         */
        i = 0;

    } else if (ctx->node && tp->cache) {
        i = ngx_http_tenant_cache_pick(tp->cache, ctx->node, ctx->serial,
                                       tp->tried,
                                       tp->conf->max_fails,
                                       tp->conf->fail_timeout);
    } else {
        i = NGX_DECLINED;
    }

    if (i == NGX_DECLINED) {
        /*
         * The entry was replaced or evicted since the request read it: go
         * through its own copy in order, from a per-worker offset.
         */
        static ngx_uint_t  next;

        i = NGX_BUSY;

        for (k = 0; k < n; k++) {
            if (!(tp->tried & ((uint64_t) 1 << ((next + k) % n)))) {
                i = (next + k) % n;
                next = i + 1;
                break;
            }
        }
    }

    if (i == NGX_BUSY) {
        pc->name = &ctx->host;
        return NGX_BUSY;
    }

    ep = &ctx->record.endpoints[i];

    tp->current = i;
    tp->tried |= (uint64_t) 1 << i;

    pc->sockaddr = ep->sockaddr;
    pc->socklen = ep->socklen;
    pc->name = &ep->name;

    return NGX_OK;
}


static void
ngx_http_tenant_upstream_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    ngx_http_tenant_upstream_peer_data_t  *tp = data;

    ngx_http_tenant_ctx_t  *ctx;

    ctx = tp->ctx;

    if ((state & NGX_PEER_FAILED) && pc->cached) {
        /*
         * A keepalive connection the backend had closed tells nothing of
         * the endpoint: no failure mark, and it may be tried again on a
         * fresh connection (nginx grants the extra try).
         */
        tp->tried &= ~((uint64_t) 1 << tp->current);

        if (pc->tries) {
            pc->tries--;
        }

        return;
    }

    if (ctx->record.nendpoints > 1 && ctx->node && tp->cache && state != 0
        && pc->sockaddr)
    {
        ngx_http_tenant_cache_mark(tp->cache, ctx->node,
                                   ctx->serial, tp->current,
                                   state & NGX_PEER_FAILED,
                                   tp->conf->fail_timeout);
    }

    if (pc->tries) {
        pc->tries--;
    }
}


static void *
ngx_http_tenant_upstream_create_conf(ngx_conf_t *cf)
{
    ngx_http_tenant_upstream_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_tenant_upstream_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->max_fails = 1;
    conf->fail_timeout = 10;

    return conf;
}


/* tenant_upstream [max_fails=N] [fail_timeout=T] */

static char *
ngx_http_tenant_upstream(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tenant_upstream_srv_conf_t  *tcf = conf;

    time_t                         t;
    ngx_int_t                      n;
    ngx_str_t                     *value, s;
    ngx_uint_t                     i;
    ngx_http_upstream_server_t    *server;
    ngx_http_upstream_srv_conf_t  *uscf;

    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);

    if (uscf->peer.init_upstream) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tenant_upstream\" must come before "
                           "\"keepalive\" and any other balancer");
        return NGX_CONF_ERROR;
    }

    if (uscf->servers && uscf->servers->nelts) {
        return "cannot be used with \"server\" in the same upstream";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "max_fails=", 10) == 0) {
            n = ngx_atoi(&value[i].data[10], value[i].len - 10);
            if (n == NGX_ERROR) {
                goto invalid;
            }
            tcf->max_fails = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "fail_timeout=", 13) == 0) {
            s.len = value[i].len - 13;
            s.data = &value[i].data[13];

            t = ngx_parse_time(&s, 1);
            if (t == (time_t) NGX_ERROR) {
                goto invalid;
            }
            tcf->fail_timeout = t;
            continue;
        }

        goto invalid;
    }

    /*
     * nginx refuses an upstream block without servers; this placeholder is
     * never used, the peers come from the request's tenant.
     */

    server = ngx_array_push(uscf->servers);
    if (server == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(server, sizeof(ngx_http_upstream_server_t));

    uscf->peer.init_upstream = ngx_http_tenant_upstream_init;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}
