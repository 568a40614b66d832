
/*
 * Non-blocking PostgreSQL for nginx workers: a small pool of libpq
 * connections driven by nginx events.
 */


#ifndef _NGX_HTTP_TENANT_PG_H_INCLUDED_
#define _NGX_HTTP_TENANT_PG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <libpq-fe.h>


#define NGX_HTTP_TENANT_PG_MAX_PARAMS  12


typedef struct ngx_http_tenant_pg_query_s  ngx_http_tenant_pg_query_t;

/*
 * res is NULL when the registry did not answer in time or the connection
 * failed; an SQL error comes as a result with an error status.
 */
typedef void (*ngx_http_tenant_pg_handler_pt)(ngx_http_tenant_pg_query_t *q,
    PGresult *res);


struct ngx_http_tenant_pg_query_s {
    const char                     *sql;
    int                             nparams;
    const char                     *params[NGX_HTTP_TENANT_PG_MAX_PARAMS];

    ngx_http_tenant_pg_handler_pt   handler;
    void                           *data;

    /* private */
    ngx_queue_t                     queue;
    ngx_event_t                     timer;
    void                           *conn;
};


typedef struct ngx_http_tenant_pg_listener_s  ngx_http_tenant_pg_listener_t;

typedef void (*ngx_http_tenant_pg_notify_pt)(void *data, PGnotify *n);
typedef void (*ngx_http_tenant_pg_listening_pt)(void *data);
/* the worker is shutting down gracefully (nginx closes idle connections) */
typedef void (*ngx_http_tenant_pg_quit_pt)(void *data);


typedef struct {
    ngx_uint_t                      total;
    ngx_uint_t                      idle;
    ngx_uint_t                      busy;
    ngx_uint_t                      connecting;
    ngx_uint_t                      down;
    ngx_uint_t                      queued;
} ngx_http_tenant_pg_stats_t;


ngx_int_t ngx_http_tenant_pg_init_process(ngx_cycle_t *cycle,
    ngx_str_t *conninfo, ngx_uint_t n, ngx_msec_t timeout, ngx_msec_t retry);
void ngx_http_tenant_pg_exit_process(void);
ngx_int_t ngx_http_tenant_pg_send(ngx_http_tenant_pg_query_t *q);
void ngx_http_tenant_pg_stats(ngx_http_tenant_pg_stats_t *st);

ngx_http_tenant_pg_listener_t *ngx_http_tenant_pg_listen_start(
    const char *command, ngx_http_tenant_pg_notify_pt notify,
    ngx_http_tenant_pg_listening_pt listening,
    ngx_http_tenant_pg_quit_pt quit, void *data);
void ngx_http_tenant_pg_listen_stop(ngx_http_tenant_pg_listener_t *l);
ngx_uint_t ngx_http_tenant_pg_listen_ready(ngx_http_tenant_pg_listener_t *l);


#endif /* _NGX_HTTP_TENANT_PG_H_INCLUDED_ */
