
/*
 * TLS for every tenant host: on each full handshake of a server with
 * "tenant_ssl on", the SNI name picks the certificate from the shared
 * store (ngx_http_tenant_certs.c): the name's own, then "*.parent"'s, else
 * the server's ssl_certificate (the platform's default).  Each worker keeps
 * the parsed objects of the certificates it served last (a bounded LRU):
 * a handshake parses DER only when a certificate is new to the worker or
 * was replaced, and never PEM.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_tenant_ssl.h"
#include "ngx_http_tenant_conf.h"
#include "ngx_http_tenant_host.h"


typedef struct {
    ngx_str_node_t                  sn;        /* the entry's host */
    ngx_queue_t                     queue;     /* LRU: newest first */
    uint32_t                        serial;
    X509                           *leaf;
    STACK_OF(X509)                 *chain;
    EVP_PKEY                       *key;
    SSL_CTX                        *ctx;       /* the three, set once */
    u_char                          host[1];
} ngx_http_tenant_ssl_obj_t;


/* a worker's parsed certificates */
struct ngx_http_tenant_ssl_worker_s {
    ngx_rbtree_t                    tree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     lru;
    ngx_uint_t                      n;
    ngx_uint_t                      max;
    ngx_uint_t                      parsed;    /* DER parses, for the stats */
};


typedef struct {
    ngx_flag_t                      enable;
    ngx_int_t                       redirect;  /* HTTPS port, 0: off */
} ngx_http_tenant_ssl_srv_conf_t;


static ngx_int_t ngx_http_tenant_ssl_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_tenant_ssl_init_process(ngx_cycle_t *cycle);
static void ngx_http_tenant_ssl_exit_process(ngx_cycle_t *cycle);
static void *ngx_http_tenant_ssl_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_tenant_ssl_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_tenant_ssl_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_tenant_ssl_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tenant_ssl_redirect(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static int ngx_http_tenant_ssl_certificate(ngx_ssl_conn_t *ssl_conn,
    void *data);
static ngx_http_tenant_ssl_obj_t *ngx_http_tenant_ssl_parsed(
    ngx_http_tenant_ssl_main_conf_t *smcf, u_char *name, size_t len);
static ngx_http_tenant_ssl_obj_t *ngx_http_tenant_ssl_parse(
    ngx_http_tenant_cert_t *cert);
static void ngx_http_tenant_ssl_obj_free(ngx_http_tenant_ssl_obj_t *obj);


static ngx_command_t  ngx_http_tenant_ssl_commands[] = {

    { ngx_string("tenant_ssl_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_tenant_ssl_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tenant_ssl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_tenant_ssl_srv_conf_t, enable),
      NULL },

    { ngx_string("tenant_ssl_redirect"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_tenant_ssl_redirect,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tenant_ssl_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_tenant_ssl_init,              /* postconfiguration */

    ngx_http_tenant_ssl_create_main_conf,  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_tenant_ssl_create_srv_conf,   /* create server configuration */
    ngx_http_tenant_ssl_merge_srv_conf,    /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_tenant_ssl_module = {
    NGX_MODULE_V1,
    &ngx_http_tenant_ssl_module_ctx,       /* module context */
    ngx_http_tenant_ssl_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_tenant_ssl_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_tenant_ssl_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* the store of this cycle, or NULL without tenant_ssl_zone */

ngx_http_tenant_certs_t *
ngx_http_tenant_ssl_certs(ngx_cycle_t *cycle)
{
    ngx_http_tenant_ssl_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_tenant_ssl_module);

    return (smcf && smcf->zone) ? smcf->zone->data : NULL;
}


/* the store of the request's configuration, or NULL */

ngx_http_tenant_certs_t *
ngx_http_tenant_ssl_store(ngx_http_request_t *r)
{
    ngx_http_tenant_ssl_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_ssl_module);

    return smcf->zone ? smcf->zone->data : NULL;
}


/*
 * The request's TLS name, normalised into buf: its length, or 0 when the
 * request did not come over TLS with SNI (or the name is no host name).
 */

size_t
ngx_http_tenant_ssl_name(ngx_http_request_t *r, u_char *buf)
{
    ngx_int_t    n;
    const char  *name;

    if (r->connection->ssl == NULL) {
        return 0;
    }

    name = SSL_get_servername(r->connection->ssl->connection,
                              TLSEXT_NAMETYPE_host_name);
    if (name == NULL) {
        return 0;
    }

    n = ngx_http_tenant_host_normalize(buf, (u_char *) name,
                                       ngx_strlen(name));

    return n > 0 ? (size_t) n : 0;
}


/* the tenant whose own certificate answers for name: NGX_DECLINED: none */

ngx_int_t
ngx_http_tenant_ssl_cert_tenant(ngx_http_request_t *r, u_char *name,
    size_t len, ngx_str_t *tenant)
{
    ngx_http_tenant_cert_t            cert;
    ngx_http_tenant_ssl_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_ssl_module);

    if (smcf->zone == NULL
        || ngx_http_tenant_certs_find(smcf->zone->data, name, len, NULL,
                                      &cert)
           != NGX_OK
        || cert.tenant_len == 0)
    {
        return NGX_DECLINED;
    }

    tenant->data = ngx_pnalloc(r->pool, cert.tenant_len);
    if (tenant->data == NULL) {
        return NGX_ERROR;
    }

    tenant->len = cert.tenant_len;
    ngx_memcpy(tenant->data, cert.tenant, cert.tenant_len);

    return NGX_OK;
}


/*
 * tenant_ssl_redirect: a plain HTTP request for a host with a certificate
 * in the store goes to HTTPS; the Location, or NGX_DECLINED.
 */

ngx_int_t
ngx_http_tenant_ssl_redirect_to(ngx_http_request_t *r, ngx_str_t *host,
    ngx_str_t *location)
{
    u_char                           *p;
    ngx_http_tenant_cert_t            cert;
    ngx_http_tenant_ssl_srv_conf_t   *sscf;
    ngx_http_tenant_ssl_main_conf_t  *smcf;

    sscf = ngx_http_get_module_srv_conf(r, ngx_http_tenant_ssl_module);
    smcf = ngx_http_get_module_main_conf(r, ngx_http_tenant_ssl_module);

    if (sscf->redirect == 0 || r->connection->ssl || smcf->zone == NULL
        || ngx_http_tenant_certs_find(smcf->zone->data, host->data,
                                      host->len, NULL, &cert)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, sizeof("https://:65535") - 1 + host->len
                             + r->unparsed_uri.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    location->data = p;

    if (sscf->redirect == 443) {
        p = ngx_sprintf(p, "https://%V%V", host, &r->unparsed_uri);

    } else {
        p = ngx_sprintf(p, "https://%V:%i%V", host, sscf->redirect,
                        &r->unparsed_uri);
    }

    location->len = p - location->data;

    return NGX_OK;
}


static int
ngx_http_tenant_ssl_certificate(ngx_ssl_conn_t *ssl_conn, void *data)
{
    ngx_http_tenant_ssl_main_conf_t  *smcf = data;

    u_char                      buf[NGX_HTTP_TENANT_HOST_MAX];
    ngx_int_t                   n;
    const char                 *name;
    ngx_http_tenant_ssl_obj_t  *obj;

    if (smcf->worker == NULL || smcf->zone == NULL) {
        return 1;
    }

    name = SSL_get_servername(ssl_conn, TLSEXT_NAMETYPE_host_name);

    if (name == NULL) {
        return 1;   /* no SNI: the default certificate */
    }

    /* empty, over-long, an address, not a host name: the default */
    n = ngx_http_tenant_host_normalize(buf, (u_char *) name,
                                       ngx_strlen(name));
    if (n <= 0) {
        return 1;
    }

    obj = ngx_http_tenant_ssl_parsed(smcf, buf, n);

    if (obj == NULL) {
        return 1;
    }

    /*
     * A context of its own per certificate, its checks done when parsed:
     * switching to it costs a reference count per object, where setting
     * the certificate and key on the connection checks the key each time
     * (about a fifth of a handshake's time, measured)
     */
    if (SSL_set_SSL_CTX(ssl_conn, obj->ctx) == NULL) {
        ngx_ssl_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tenant: cannot use the certificate of \"%s\"",
                      obj->host);
        return 0;
    }

    return 1;
}


/* the parsed certificate for name, current with the store, or NULL */

static ngx_http_tenant_ssl_obj_t *
ngx_http_tenant_ssl_parsed(ngx_http_tenant_ssl_main_conf_t *smcf,
    u_char *name, size_t len)
{
    ngx_str_t                      host;
    ngx_pool_t                    *pool;
    ngx_queue_t                   *q;
    ngx_http_tenant_cert_t         cert;
    ngx_http_tenant_ssl_obj_t     *obj, *old;
    ngx_http_tenant_ssl_worker_t  *ws;

    ws = smcf->worker;

    if (ngx_http_tenant_certs_find(smcf->zone->data, name, len, NULL, &cert)
        != NGX_OK)
    {
        return NULL;
    }

    host.data = cert.host;
    host.len = cert.host_len;

    obj = (ngx_http_tenant_ssl_obj_t *)
              ngx_str_rbtree_lookup(&ws->tree, &host,
                                    ngx_crc32_short(host.data, host.len));

    if (obj && obj->serial == cert.serial) {
        ngx_queue_remove(&obj->queue);
        ngx_queue_insert_head(&ws->lru, &obj->queue);
        return obj;
    }

    if (obj) {
        /* replaced in the store since it was parsed */
        ngx_rbtree_delete(&ws->tree, &obj->sn.node);
        ngx_queue_remove(&obj->queue);
        ngx_http_tenant_ssl_obj_free(obj);
        ws->n--;
    }

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    obj = NULL;

    if (ngx_http_tenant_certs_find(smcf->zone->data, name, len, pool, &cert)
        == NGX_OK)
    {
        obj = ngx_http_tenant_ssl_parse(&cert);
        explicit_bzero(cert.key, cert.key_len);
    }

    ngx_destroy_pool(pool);

    if (obj == NULL) {
        return NULL;
    }

    ws->parsed++;

    if (ws->n >= ws->max && !ngx_queue_empty(&ws->lru)) {
        q = ngx_queue_last(&ws->lru);
        ngx_queue_remove(q);

        old = ngx_queue_data(q, ngx_http_tenant_ssl_obj_t, queue);
        ngx_rbtree_delete(&ws->tree, &old->sn.node);
        ngx_http_tenant_ssl_obj_free(old);
        ws->n--;
    }

    ngx_rbtree_insert(&ws->tree, &obj->sn.node);
    ngx_queue_insert_head(&ws->lru, &obj->queue);
    ws->n++;

    return obj;
}


static ngx_http_tenant_ssl_obj_t *
ngx_http_tenant_ssl_parse(ngx_http_tenant_cert_t *cert)
{
    X509                        *x;
    const u_char                *p, *last;
    ngx_http_tenant_ssl_obj_t   *obj;

    obj = ngx_calloc(sizeof(ngx_http_tenant_ssl_obj_t) + cert->host_len,
                     ngx_cycle->log);
    if (obj == NULL) {
        return NULL;
    }

    ngx_memcpy(obj->host, cert->host, cert->host_len);
    obj->sn.str.data = obj->host;
    obj->sn.str.len = cert->host_len;
    obj->sn.node.key = ngx_crc32_short(obj->host, cert->host_len);
    obj->serial = cert->serial;

    p = cert->chain;
    last = cert->chain + cert->chain_len;

    obj->leaf = d2i_X509(NULL, &p, last - p);
    obj->chain = sk_X509_new_null();

    if (obj->leaf == NULL || obj->chain == NULL) {
        goto failed;
    }

    while (p < last) {
        x = d2i_X509(NULL, &p, last - p);

        if (x == NULL || !sk_X509_push(obj->chain, x)) {
            X509_free(x);
            goto failed;
        }
    }

    p = cert->key;
    obj->key = d2i_AutoPrivateKey(NULL, &p, cert->key_len);

    if (obj->key == NULL) {
        goto failed;
    }

    obj->ctx = SSL_CTX_new(TLS_server_method());

    if (obj->ctx == NULL
        || SSL_CTX_use_cert_and_key(obj->ctx, obj->leaf, obj->key, obj->chain,
                                    1)
           != 1)
    {
        goto failed;
    }

    return obj;

failed:

    ngx_ssl_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "tenant: certificate \"%*s\" does not parse",
                  cert->host_len, cert->host);

    ngx_http_tenant_ssl_obj_free(obj);

    return NULL;
}


static void
ngx_http_tenant_ssl_obj_free(ngx_http_tenant_ssl_obj_t *obj)
{
    SSL_CTX_free(obj->ctx);
    X509_free(obj->leaf);
    sk_X509_pop_free(obj->chain, X509_free);
    EVP_PKEY_free(obj->key);
    ngx_free(obj);
}


void
ngx_http_tenant_ssl_stats(ngx_http_tenant_ssl_main_conf_t *smcf,
    ngx_uint_t *parsed, ngx_uint_t *cached)
{
    *parsed = smcf->worker ? smcf->worker->parsed : 0;
    *cached = smcf->worker ? smcf->worker->n : 0;
}


/*
 * Every server with "tenant_ssl on" asks the store for its certificate:
 * its SSL_CTX exists once the http block is merged, before this runs.
 */

static ngx_int_t
ngx_http_tenant_ssl_init(ngx_conf_t *cf)
{
    ngx_uint_t                         s;
    ngx_http_ssl_srv_conf_t           *sslcf;
    ngx_http_core_srv_conf_t         **cscfp;
    ngx_http_core_main_conf_t         *cmcf;
    ngx_http_tenant_ssl_srv_conf_t    *sscf;
    ngx_http_tenant_ssl_main_conf_t   *smcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tenant_ssl_module);

    cscfp = cmcf->servers.elts;

    for (s = 0; s < cmcf->servers.nelts; s++) {

        sscf = cscfp[s]->ctx->srv_conf[ngx_http_tenant_ssl_module.ctx_index];

        if (!sscf->enable) {
            continue;
        }

        sslcf = cscfp[s]->ctx->srv_conf[ngx_http_ssl_module.ctx_index];

        if (smcf->zone == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"tenant_ssl\" needs \"tenant_ssl_zone\"");
            return NGX_ERROR;
        }

        if (sslcf->ssl.ctx == NULL || sslcf->certificates == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"tenant_ssl\" needs a \"listen ... ssl\" server "
                          "with \"ssl_certificate\": the default for names "
                          "the store does not have");
            return NGX_ERROR;
        }

        SSL_CTX_set_cert_cb(sslcf->ssl.ctx, ngx_http_tenant_ssl_certificate,
                            smcf);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tenant_ssl_init_process(ngx_cycle_t *cycle)
{
    ngx_http_tenant_ssl_worker_t     *ws;
    ngx_http_tenant_ssl_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_tenant_ssl_module);

    if (smcf == NULL || smcf->zone == NULL) {
        return NGX_OK;
    }

    ws = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tenant_ssl_worker_t));
    if (ws == NULL) {
        return NGX_ERROR;
    }

    ngx_rbtree_init(&ws->tree, &ws->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&ws->lru);
    ws->max = smcf->cache;

    smcf->worker = ws;

    return NGX_OK;
}


static void
ngx_http_tenant_ssl_exit_process(ngx_cycle_t *cycle)
{
    ngx_queue_t                      *q;
    ngx_http_tenant_ssl_obj_t        *obj;
    ngx_http_tenant_ssl_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_tenant_ssl_module);

    if (smcf == NULL || smcf->worker == NULL) {
        return;
    }

    while (!ngx_queue_empty(&smcf->worker->lru)) {
        q = ngx_queue_head(&smcf->worker->lru);
        ngx_queue_remove(q);
        obj = ngx_queue_data(q, ngx_http_tenant_ssl_obj_t, queue);
        ngx_http_tenant_ssl_obj_free(obj);
    }

    smcf->worker = NULL;
}


static void *
ngx_http_tenant_ssl_create_main_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_tenant_ssl_main_conf_t));
}


static void *
ngx_http_tenant_ssl_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_tenant_ssl_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tenant_ssl_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->enable = NGX_CONF_UNSET;
    conf->redirect = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_tenant_ssl_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_tenant_ssl_srv_conf_t  *prev = parent;
    ngx_http_tenant_ssl_srv_conf_t  *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_value(conf->redirect, prev->redirect, 0);

    return NGX_CONF_OK;
}


/* tenant_ssl_zone name:size key_file=path [cache=number] */

static char *
ngx_http_tenant_ssl_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tenant_ssl_main_conf_t  *smcf = conf;

    ssize_t      size;
    ngx_int_t    n;
    ngx_str_t   *value, name, key_file;
    ngx_uint_t   i;

    if (smcf->zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_tenant_conf_zone(cf, &value[1], 64 * 1024, &name, &size)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_str_null(&key_file);
    smcf->cache = 1000;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "key_file=", 9) == 0) {
            key_file.data = value[i].data + 9;
            key_file.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "cache=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);

            if (n == NGX_ERROR || n < 1 || n > 1000000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": cache=1-1000000 parsed "
                                   "certificates per worker", &value[i]);
                return NGX_CONF_ERROR;
            }

            smcf->cache = n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": key_file=path or "
                           "cache=number", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (key_file.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tenant_ssl_zone\" needs key_file=path: the "
                           "file (0600, 64 hex digits) the registry's "
                           "certificate keys are sealed with");
        return NGX_CONF_ERROR;
    }

    return ngx_http_tenant_certs_zone(cf, &name, size, &key_file,
                                      &smcf->zone);
}


/* tenant_ssl_redirect off | port */

static char *
ngx_http_tenant_ssl_redirect(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tenant_ssl_srv_conf_t  *sscf = conf;

    ngx_str_t  *value;

    if (sscf->redirect != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        sscf->redirect = 0;
        return NGX_CONF_OK;
    }

    sscf->redirect = ngx_atoi(value[1].data, value[1].len);

    if (sscf->redirect == NGX_ERROR || sscf->redirect < 1
        || sscf->redirect > 65535)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\": \"off\" or the HTTPS port",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
