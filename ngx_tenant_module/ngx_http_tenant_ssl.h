
/*
 * TLS for every tenant host: the certificate the SNI name asks for, from
 * the shared store, with no reload.
 */


#ifndef _NGX_HTTP_TENANT_SSL_H_INCLUDED_
#define _NGX_HTTP_TENANT_SSL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_certs.h"


typedef struct ngx_http_tenant_ssl_worker_s  ngx_http_tenant_ssl_worker_t;


typedef struct {
    ngx_shm_zone_t                 *zone;      /* tenant_ssl_zone */
    ngx_uint_t                      cache;     /* parsed certificates kept */
    ngx_http_tenant_ssl_worker_t   *worker;    /* this worker's, from its
                                                  init_process */
} ngx_http_tenant_ssl_main_conf_t;


ngx_http_tenant_certs_t *ngx_http_tenant_ssl_certs(ngx_cycle_t *cycle);
ngx_http_tenant_certs_t *ngx_http_tenant_ssl_store(ngx_http_request_t *r);
size_t ngx_http_tenant_ssl_name(ngx_http_request_t *r, u_char *buf);
ngx_int_t ngx_http_tenant_ssl_cert_tenant(ngx_http_request_t *r,
    u_char *name, size_t len, ngx_str_t *tenant);
ngx_int_t ngx_http_tenant_ssl_redirect_to(ngx_http_request_t *r,
    ngx_str_t *host, ngx_str_t *location);
/* this worker's parsed-certificate cache: parses so far, entries now */
void ngx_http_tenant_ssl_stats(ngx_http_tenant_ssl_main_conf_t *smcf,
    ngx_uint_t *parsed, ngx_uint_t *cached);


extern ngx_module_t  ngx_http_tenant_ssl_module;


#endif /* _NGX_HTTP_TENANT_SSL_H_INCLUDED_ */
