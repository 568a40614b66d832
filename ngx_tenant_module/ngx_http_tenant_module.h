
/*
 * ngx_tenant: routes each request's Host to its tenant's stack.
 */


#ifndef _NGX_HTTP_TENANT_MODULE_H_INCLUDED_
#define _NGX_HTTP_TENANT_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_TENANT_ROLE_SITE          0
#define NGX_HTTP_TENANT_ROLE_ADMIN         1

/* tenant status as cached; UNKNOWN marks a negative entry */
#define NGX_HTTP_TENANT_UNKNOWN            0
#define NGX_HTTP_TENANT_PROVISIONING       1
#define NGX_HTTP_TENANT_ACTIVE             2
#define NGX_HTTP_TENANT_SUSPENDED          3
#define NGX_HTTP_TENANT_FAILED             4
#define NGX_HTTP_TENANT_DELETING           5

/* how the request's answer was found, for $tenant_cache_status */
#define NGX_HTTP_TENANT_CACHE_NONE         0
#define NGX_HTTP_TENANT_CACHE_HIT          1
#define NGX_HTTP_TENANT_CACHE_MISS         2
#define NGX_HTTP_TENANT_CACHE_EXPIRED      3
#define NGX_HTTP_TENANT_CACHE_STALE        4
#define NGX_HTTP_TENANT_CACHE_NEGATIVE     5
#define NGX_HTTP_TENANT_CACHE_ERROR        6

#define NGX_HTTP_TENANT_MAX_ENDPOINTS      32


typedef struct {
    struct sockaddr                *sockaddr;
    socklen_t                       socklen;
    ngx_str_t                       name;
    ngx_uint_t                      weight;
} ngx_http_tenant_endpoint_t;


/* a tenant's traffic limits as the edge enforces them; 0: none */
typedef struct {
    uint32_t                        rate;      /* requests/s, x1000 */
    uint32_t                        burst;     /* requests */
    uint32_t                        conns;     /* requests at once */
    uint32_t                        reserved;
    uint64_t                        requests;  /* a month's quota */
    uint64_t                        bytes;     /* a month's, in and out */
} ngx_http_tenant_limits_t;


typedef struct {
    ngx_uint_t                      status;
    ngx_uint_t                      role;
    ngx_uint_t                      hsts;      /* HTTPS only (tenants.hsts) */
    ngx_str_t                       id;
    ngx_str_t                       blueprint;
    ngx_uint_t                      nendpoints;
    ngx_http_tenant_endpoint_t     *endpoints;
    ngx_http_tenant_limits_t        limits;
} ngx_http_tenant_record_t;


typedef struct ngx_http_tenant_cache_s  ngx_http_tenant_cache_t;
typedef struct ngx_http_tenant_lookup_s  ngx_http_tenant_lookup_t;
typedef struct ngx_http_tenant_lookups_s  ngx_http_tenant_lookups_t;
typedef struct ngx_http_tenant_listen_s  ngx_http_tenant_listen_t;
typedef struct ngx_http_tenant_usage_s  ngx_http_tenant_usage_t;
typedef struct ngx_http_tenant_ctx_s  ngx_http_tenant_ctx_t;

/* called, from the event loop, when a registry look-up has answered */
typedef void (*ngx_http_tenant_lookup_done_pt)(ngx_http_tenant_ctx_t *ctx);


typedef struct {
    ngx_regex_t                    *regex;
    ngx_str_t                       source;
    ngx_int_t                       tenant;    /* capture index */
    ngx_int_t                       role;      /* capture index or -1 */
    ngx_uint_t                      captures;
    ngx_str_t                       domain;    /* its literal suffix, or "" */
} ngx_http_tenant_pattern_t;


typedef struct {
    ngx_str_t                       registry;
    ngx_uint_t                      connections;
    ngx_msec_t                      timeout;
    ngx_msec_t                      retry;

    ngx_shm_zone_t                 *shm_zone;
    ngx_shm_zone_t                 *filter_zone;   /* tenant_host_filter */
    ngx_shm_zone_t                 *traffic_zone;  /* tenant_traffic_zone */
    ngx_shm_zone_t                 *jwt_zone;      /* tenant_jwt's keys */
    time_t                          ttl;
    time_t                          negative_ttl;
    time_t                          max_stale;

    ngx_array_t                     patterns;  /* ngx_http_tenant_pattern_t */

    /* a worker's own, made in its init_process from its cycle's zones */
    ngx_http_tenant_lookups_t      *lookups;
    ngx_http_tenant_listen_t       *listen;
    ngx_http_tenant_usage_t        *usage;     /* NULL: sync=off */
} ngx_http_tenant_main_conf_t;


typedef struct {
    ngx_flag_t                      enable;
    ngx_uint_t                      unknown_status;
    ngx_uint_t                      suspended_status;
    time_t                          retry_after;
    ngx_uint_t                      quota_status;
} ngx_http_tenant_loc_conf_t;


/* per request; also the waiter of an in-flight registry lookup */
struct ngx_http_tenant_ctx_s {
    ngx_http_request_t             *request;
    ngx_str_t                       host;
    ngx_str_t                       tenant;    /* from a host pattern */
    ngx_uint_t                      role;

    ngx_http_tenant_record_t        record;
    ngx_uint_t                      cache_status;
    void                           *node;      /* shm entry, for the balancer */
    uint32_t                        serial;

    ngx_http_tenant_lookup_t       *lookup;
    ngx_queue_t                     queue;     /* in lookup->waiters */
    ngx_http_tenant_lookup_done_pt  handler;

    void                           *traffic;   /* its tenant_traffic_zone node */
    ngx_uint_t                      journal;   /* its place there, plus one */
    ngx_uint_t                      refused;   /* NGX_HTTP_TENANT_REFUSED_* */

    unsigned                        resolved:1;
    unsigned                        waiting:1;
    unsigned                        stale:1;   /* have a stale record */
    unsigned                        failed:1;  /* the registry did not answer */
    unsigned                        admitted:1;  /* counted as active */
};


ngx_http_tenant_ctx_t *ngx_http_tenant_get_ctx(ngx_http_request_t *r);
ngx_str_t *ngx_http_tenant_host_in_domain(
    ngx_http_tenant_main_conf_t *tmcf, u_char *host, size_t len);
ngx_uint_t ngx_http_tenant_host_is_platform(
    ngx_http_tenant_main_conf_t *tmcf, u_char *host, size_t len);


extern ngx_module_t  ngx_http_tenant_module;


#endif /* _NGX_HTTP_TENANT_MODULE_H_INCLUDED_ */
