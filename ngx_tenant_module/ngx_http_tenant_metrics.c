
/*
 * tenant_metrics: the edge's counters in Prometheus text format (0.0.4).
 *
 * Per tenant, from the tenant_traffic_zone: one series for each of its
 * first series= tenants seen, the rest adding up under tenant="_other",
 * so a scrape stays bounded however many tenants there are.  Edge-wide,
 * from the tenant_cache_zone: the cache, the registry's look-ups and the
 * listener.
 *
 * Put it in a location of the platform's own server and restrict it with
 * allow/deny: tenant ids and their traffic are the platform's business.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_module.h"
#include "ngx_http_tenant_cache.h"
#include "ngx_http_tenant_traffic.h"


/* the most one tenant's lines can take: every line, every label escaped */
#define NGX_HTTP_TENANT_METRICS_SERIES_MAX  (40 * 256)
#define NGX_HTTP_TENANT_METRICS_BUF         (64 * 1024)


typedef struct {
    ngx_http_request_t             *request;
    ngx_chain_t                    *out;
    ngx_chain_t                   **last;
    ngx_buf_t                      *b;
    off_t                           size;
} ngx_http_tenant_metrics_ctx_t;


static ngx_int_t ngx_http_tenant_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_tenant_metrics_tenants(
    ngx_http_tenant_metrics_ctx_t *mc, ngx_http_tenant_traffic_t *tt);
static ngx_int_t ngx_http_tenant_metrics_series(
    ngx_http_tenant_metrics_ctx_t *mc, ngx_http_tenant_series_copy_t *sc,
    ngx_uint_t family);
static ngx_int_t ngx_http_tenant_metrics_edge(
    ngx_http_tenant_metrics_ctx_t *mc, ngx_http_tenant_main_conf_t *tmcf);
static u_char *ngx_http_tenant_metrics_label(u_char *p, ngx_str_t *value);
static u_char *ngx_http_tenant_metrics_histogram(u_char *p, const char *name,
    const char *help, ngx_atomic_t *buckets, ngx_uint_t *count);
static ngx_int_t ngx_http_tenant_metrics_room(
    ngx_http_tenant_metrics_ctx_t *mc, size_t size);
static char *ngx_http_tenant_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_tenant_metrics_commands[] = {

    { ngx_string("tenant_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tenant_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tenant_metrics_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_tenant_metrics_module = {
    NGX_MODULE_V1,
    &ngx_http_tenant_metrics_module_ctx,   /* module context */
    ngx_http_tenant_metrics_commands,      /* module directives */
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


static const char  *ngx_http_tenant_metrics_classes[] = {
    "1xx", "2xx", "3xx", "4xx", "5xx"
};

/* NGX_HTTP_TENANT_CACHE_*, as $tenant_cache_status says them */
static const char  *ngx_http_tenant_metrics_cache[] = {
    "none", "hit", "miss", "expired", "stale", "negative", "error"
};

static const char  *ngx_http_tenant_metrics_refusals[] = {
    "none", "rate", "connections", "quota"
};

/* the bounds of ngx_http_tenant_traffic_count()'s buckets, in seconds */
static const char  *ngx_http_tenant_metrics_upstream_le[] = {
    "0.005", "0.025", "0.1", "0.5", "2.5", "+Inf"
};

/* and of ngx_http_tenant_lookup.c's */
static const char  *ngx_http_tenant_metrics_registry_le[] = {
    "0.001", "0.005", "0.025", "0.1", "1", "+Inf"
};


/* each family's HELP and TYPE come once, before all its series */
static const char  *ngx_http_tenant_metrics_families[] = {
    "# HELP ngx_tenant_requests_total Requests of a tenant, by status class."
    "\n# TYPE ngx_tenant_requests_total counter\n",

    "# HELP ngx_tenant_received_bytes_total Bytes of a tenant's requests."
    "\n# TYPE ngx_tenant_received_bytes_total counter\n",

    "# HELP ngx_tenant_sent_bytes_total Bytes sent for a tenant's requests."
    "\n# TYPE ngx_tenant_sent_bytes_total counter\n",

    "# HELP ngx_tenant_upstream_response_seconds Time a tenant's stack took "
    "to answer.\n# TYPE ngx_tenant_upstream_response_seconds histogram\n",

    "# HELP ngx_tenant_active_requests A tenant's requests in flight, "
    "admitted by its limits.\n# TYPE ngx_tenant_active_requests gauge\n",

    "# HELP ngx_tenant_routed_total A tenant's requests, by how the edge "
    "found its host.\n# TYPE ngx_tenant_routed_total counter\n",

    "# HELP ngx_tenant_refused_total A tenant's requests refused, by the "
    "limit they were over.\n# TYPE ngx_tenant_refused_total counter\n"
};

#define NGX_HTTP_TENANT_METRICS_FAMILIES  7


static ngx_int_t
ngx_http_tenant_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_tenant_main_conf_t    *tmcf;
    ngx_http_tenant_metrics_ctx_t   mc;

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_module);

    ngx_memzero(&mc, sizeof(ngx_http_tenant_metrics_ctx_t));
    mc.request = r;
    mc.last = &mc.out;

    if (tmcf->traffic_zone
        && ngx_http_tenant_metrics_tenants(&mc, tmcf->traffic_zone->data)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_tenant_metrics_edge(&mc, tmcf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mc.b->last_buf = (r == r->main) ? 1 : 0;
    mc.b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = mc.size;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, mc.out);
}


static ngx_int_t
ngx_http_tenant_metrics_tenants(ngx_http_tenant_metrics_ctx_t *mc,
    ngx_http_tenant_traffic_t *tt)
{
    size_t                          len;
    ngx_uint_t                      i, f;
    ngx_array_t                     series;
    ngx_http_tenant_series_copy_t  *sc, other;

    if (ngx_http_tenant_traffic_copy(tt, mc->request->pool, &series, &other)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sc = series.elts;

    /* a family's lines together, as the format wants */
    for (f = 0; f < NGX_HTTP_TENANT_METRICS_FAMILIES; f++) {

        if (ngx_http_tenant_metrics_room(mc, 256) != NGX_OK) {
            return NGX_ERROR;
        }

        len = ngx_strlen(ngx_http_tenant_metrics_families[f]);
        mc->b->last = ngx_cpymem(mc->b->last,
                                 ngx_http_tenant_metrics_families[f], len);
        mc->size += len;

        for (i = 0; i < series.nelts; i++) {
            if (ngx_http_tenant_metrics_series(mc, &sc[i], f) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        if (ngx_http_tenant_metrics_series(mc, &other, f) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * One tenant's lines of one family.  Counters still at zero are left out
 * (a series appears when it first counts, which Prometheus reads as
 * starting from zero), so an idle tenant costs a line or two.
 */

static ngx_int_t
ngx_http_tenant_metrics_series(ngx_http_tenant_metrics_ctx_t *mc,
    ngx_http_tenant_series_copy_t *sc, ngx_uint_t family)
{
    u_char                      *p, *id;
    ngx_uint_t                   i, n, sum;
    ngx_http_tenant_counters_t  *c;

    if (ngx_http_tenant_metrics_room(mc, NGX_HTTP_TENANT_METRICS_SERIES_MAX)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    c = &sc->c;

    /* the escaped id, written once and copied into each line */
    id = mc->b->end - 2 * NGX_HTTP_TENANT_ID_MAX - 2;
    n = ngx_http_tenant_metrics_label(id, &sc->id) - id;

    p = mc->b->last;

    switch (family) {

    case 0:
        for (i = 0; i < NGX_HTTP_TENANT_CLASSES; i++) {
            if (c->requests[i]) {
                p = ngx_sprintf(p, "ngx_tenant_requests_total{tenant=\"%*s\","
                                "class=\"%s\"} %uA\n", n, id,
                                ngx_http_tenant_metrics_classes[i],
                                c->requests[i]);
            }
        }
        break;

    case 1:
        p = ngx_sprintf(p, "ngx_tenant_received_bytes_total{tenant=\"%*s\"} "
                        "%uA\n", n, id, c->bytes_in);
        break;

    case 2:
        p = ngx_sprintf(p, "ngx_tenant_sent_bytes_total{tenant=\"%*s\"} "
                        "%uA\n", n, id, c->bytes_out);
        break;

    case 3:
        sum = 0;

        for (i = 0; i < NGX_HTTP_TENANT_UPSTREAM_BUCKETS; i++) {
            sum += c->upstream[i];
        }

        if (sum == 0) {
            break;
        }

        sum = 0;

        for (i = 0; i < NGX_HTTP_TENANT_UPSTREAM_BUCKETS; i++) {
            sum += c->upstream[i];
            p = ngx_sprintf(p, "ngx_tenant_upstream_response_seconds_bucket"
                            "{tenant=\"%*s\",le=\"%s\"} %ui\n", n, id,
                            ngx_http_tenant_metrics_upstream_le[i], sum);
        }

        p = ngx_sprintf(p, "ngx_tenant_upstream_response_seconds_sum"
                        "{tenant=\"%*s\"} %uA.%03uA\n"
                        "ngx_tenant_upstream_response_seconds_count"
                        "{tenant=\"%*s\"} %ui\n",
                        n, id, c->upstream_ms / 1000, c->upstream_ms % 1000,
                        n, id, sum);
        break;

    case 4:
        p = ngx_sprintf(p, "ngx_tenant_active_requests{tenant=\"%*s\"} %ui\n",
                        n, id, sc->active);
        break;

    case 5:
        for (i = 0; i < NGX_HTTP_TENANT_CACHE_STATUSES; i++) {
            if (c->cache[i]) {
                p = ngx_sprintf(p, "ngx_tenant_routed_total{tenant=\"%*s\","
                                "cache=\"%s\"} %uA\n", n, id,
                                ngx_http_tenant_metrics_cache[i],
                                c->cache[i]);
            }
        }
        break;

    default: /* 6 */
        for (i = 1; i < NGX_HTTP_TENANT_REFUSALS; i++) {
            if (c->refused[i]) {
                p = ngx_sprintf(p, "ngx_tenant_refused_total{tenant=\"%*s\","
                                "limit=\"%s\"} %uA\n", n, id,
                                ngx_http_tenant_metrics_refusals[i],
                                c->refused[i]);
            }
        }
        break;
    }

    mc->size += p - mc->b->last;
    mc->b->last = p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tenant_metrics_edge(ngx_http_tenant_metrics_ctx_t *mc,
    ngx_http_tenant_main_conf_t *tmcf)
{
    u_char                         *p, *start;
    ngx_uint_t                      i, sum;
    ngx_http_tenant_cache_t        *cache;
    ngx_http_tenant_cache_sh_t     *sh;
    ngx_http_tenant_traffic_t      *tt;
    ngx_http_tenant_traffic_sh_t   *tsh;
    ngx_http_tenant_proc_counts_t   edge;

    if (ngx_http_tenant_metrics_room(mc, 12288) != NGX_OK) {
        return NGX_ERROR;
    }

    p = mc->b->last;
    start = p;

    if (tmcf->traffic_zone) {
        tt = tmcf->traffic_zone->data;
        tsh = tt->sh;

        ngx_http_tenant_traffic_edge(tt, &edge);

        p = ngx_sprintf(p,
            "# HELP ngx_tenant_edge_requests_total Requests the tenant "
            "handler saw, by how their host was found.\n"
            "# TYPE ngx_tenant_edge_requests_total counter\n");

        for (i = 0; i < NGX_HTTP_TENANT_CACHE_STATUSES; i++) {
            p = ngx_sprintf(p, "ngx_tenant_edge_requests_total{cache=\"%s\"} "
                            "%uA\n", ngx_http_tenant_metrics_cache[i],
                            edge.routed[i]);
        }

        p = ngx_sprintf(p,
            "# HELP ngx_tenant_edge_active_requests Requests in flight "
            "admitted by a tenant's limits.\n"
            "# TYPE ngx_tenant_edge_active_requests gauge\n"
            "ngx_tenant_edge_active_requests %uA\n"
            "# HELP ngx_tenant_traffic_tenants Tenants the traffic zone "
            "keeps state for.\n"
            "# TYPE ngx_tenant_traffic_tenants gauge\n"
            "ngx_tenant_traffic_tenants %uA\n"
            "# HELP ngx_tenant_traffic_series Tenants with series of their "
            "own (tenant_traffic_zone series=).\n"
            "# TYPE ngx_tenant_traffic_series gauge\n"
            "ngx_tenant_traffic_series %ui\n"
            "# HELP ngx_tenant_traffic_evictions_total Tenants dropped from "
            "the traffic zone, idle or for room.\n"
            "# TYPE ngx_tenant_traffic_evictions_total counter\n"
            "ngx_tenant_traffic_evictions_total %uA\n"
            "# HELP ngx_tenant_traffic_full_total Requests neither limited "
            "nor counted apart: no room in the traffic zone.\n"
            "# TYPE ngx_tenant_traffic_full_total counter\n"
            "ngx_tenant_traffic_full_total %uA\n"
            "# HELP ngx_tenant_quota_syncs_total Monthly quota counts sent "
            "to the registry and its totals taken back.\n"
            "# TYPE ngx_tenant_quota_syncs_total counter\n"
            "ngx_tenant_quota_syncs_total %uA\n"
            "# HELP ngx_tenant_quota_sync_errors_total Quota syncs the "
            "registry did not answer, sent again.\n"
            "# TYPE ngx_tenant_quota_sync_errors_total counter\n"
            "ngx_tenant_quota_sync_errors_total %uA\n",
            edge.active, tsh->tenants, tt->nseries, tsh->evictions,
            tsh->full, tsh->syncs, tsh->sync_errors);
    }

    cache = tmcf->shm_zone ? tmcf->shm_zone->data : NULL;

    if (cache) {
        sh = cache->sh;

        p = ngx_sprintf(p,
            "# HELP ngx_tenant_cache_hits_total Hosts found fresh in the "
            "cache.\n"
            "# TYPE ngx_tenant_cache_hits_total counter\n"
            "ngx_tenant_cache_hits_total %uA\n"
            "# HELP ngx_tenant_cache_misses_total Hosts the registry was "
            "asked for.\n"
            "# TYPE ngx_tenant_cache_misses_total counter\n"
            "ngx_tenant_cache_misses_total %uA\n"
            "# HELP ngx_tenant_cache_stale_total Requests served from an "
            "expired entry while the registry did not answer.\n"
            "# TYPE ngx_tenant_cache_stale_total counter\n"
            "ngx_tenant_cache_stale_total %uA\n"
            "# HELP ngx_tenant_cache_evictions_total Entries dropped for "
            "room.\n"
            "# TYPE ngx_tenant_cache_evictions_total counter\n"
            "ngx_tenant_cache_evictions_total %uA\n"
            "# HELP ngx_tenant_cache_zone_full_total Entries that found no "
            "room.\n"
            "# TYPE ngx_tenant_cache_zone_full_total counter\n"
            "ngx_tenant_cache_zone_full_total %uA\n"
            "# HELP ngx_tenant_cache_entries Hosts in the cache.\n"
            "# TYPE ngx_tenant_cache_entries gauge\n"
            "ngx_tenant_cache_entries %uA\n"
            "# HELP ngx_tenant_cache_notifications_total Registry "
            "notifications applied to the cache.\n"
            "# TYPE ngx_tenant_cache_notifications_total counter\n"
            "ngx_tenant_cache_notifications_total %uA\n",
            sh->hits, sh->misses, sh->stale, sh->evictions, sh->zone_full,
            sh->entries, sh->notifications);

        p = ngx_http_tenant_metrics_histogram(p,
            "ngx_tenant_registry_query_seconds",
            "Time the registry took to answer a look-up.",
            sh->query_buckets, &sum);

        p = ngx_sprintf(p,
            "ngx_tenant_registry_query_seconds_sum %uA.%03uA\n"
            "ngx_tenant_registry_query_seconds_count %ui\n"
            "# HELP ngx_tenant_registry_errors_total Look-ups the registry "
            "did not answer, or answered with an error.\n"
            "# TYPE ngx_tenant_registry_errors_total counter\n"
            "ngx_tenant_registry_errors_total %uA\n"
            "# HELP ngx_tenant_listener_connects_total Times the listener "
            "(re)started LISTENing to the registry.\n"
            "# TYPE ngx_tenant_listener_connects_total counter\n"
            "ngx_tenant_listener_connects_total %uA\n"
            "# HELP ngx_tenant_listener_up Whether a worker LISTENs to the "
            "registry now.\n"
            "# TYPE ngx_tenant_listener_up gauge\n"
            "ngx_tenant_listener_up %d\n",
            sh->query_ms / 1000, sh->query_ms % 1000, sum,
            sh->query_errors, sh->listener_connects,
            sh->listener_ready ? 1 : 0);

        p = ngx_http_tenant_metrics_histogram(p,
            "ngx_tenant_propagation_seconds",
            "Time from a registry commit to its notification on this edge, "
            "measured by the edge's own probes.",
            sh->probe_buckets, &sum);

        p = ngx_sprintf(p,
            "ngx_tenant_propagation_seconds_sum %uA.%06uA\n"
            "ngx_tenant_propagation_seconds_count %ui\n"
            "# HELP ngx_tenant_propagation_last_seconds The last probe's "
            "propagation time.\n"
            "# TYPE ngx_tenant_propagation_last_seconds gauge\n"
            "ngx_tenant_propagation_last_seconds %uA.%06uA\n"
            "# HELP ngx_tenant_propagation_probes_total Probes sent; those "
            "never counted in ngx_tenant_propagation_seconds were lost.\n"
            "# TYPE ngx_tenant_propagation_probes_total counter\n"
            "ngx_tenant_propagation_probes_total %uA\n",
            sh->probe_us / 1000000, sh->probe_us % 1000000, sum,
            sh->probe_last_us / 1000000, sh->probe_last_us % 1000000,
            sh->probes_sent);
    }

    mc->size += p - start;
    mc->b->last = p;

    return NGX_OK;
}


/*
 * An edge-wide histogram's HELP, TYPE and cumulative buckets (the
 * registry's bounds); its _sum and _count lines are the caller's, with
 * *count the total.
 */

static u_char *
ngx_http_tenant_metrics_histogram(u_char *p, const char *name,
    const char *help, ngx_atomic_t *buckets, ngx_uint_t *count)
{
    ngx_uint_t  i, sum;

    p = ngx_sprintf(p, "# HELP %s %s\n# TYPE %s histogram\n",
                    name, help, name);

    sum = 0;

    for (i = 0; i < NGX_HTTP_TENANT_REGISTRY_BUCKETS; i++) {
        sum += buckets[i];
        p = ngx_sprintf(p, "%s_bucket{le=\"%s\"} %ui\n", name,
                        ngx_http_tenant_metrics_registry_le[i], sum);
    }

    *count = sum;

    return p;
}


/* a label value as the text format wants it: \\, \" and \n escaped */

static u_char *
ngx_http_tenant_metrics_label(u_char *p, ngx_str_t *value)
{
    u_char      c;
    ngx_uint_t  i;

    for (i = 0; i < value->len && i < NGX_HTTP_TENANT_ID_MAX; i++) {
        c = value->data[i];

        switch (c) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = c;
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = c;
        }
    }

    return p;
}


/* a buffer with size bytes free, a new one in the chain if need be */

static ngx_int_t
ngx_http_tenant_metrics_room(ngx_http_tenant_metrics_ctx_t *mc, size_t size)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (mc->b && (size_t) (mc->b->end - mc->b->last) >= size) {
        return NGX_OK;
    }

    b = ngx_create_temp_buf(mc->request->pool,
                            ngx_max(size, NGX_HTTP_TENANT_METRICS_BUF));
    if (b == NULL) {
        return NGX_ERROR;
    }

    cl = ngx_alloc_chain_link(mc->request->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    *mc->last = cl;
    mc->last = &cl->next;
    mc->b = b;

    return NGX_OK;
}


static char *
ngx_http_tenant_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_tenant_metrics_handler;

    return NGX_CONF_OK;
}
