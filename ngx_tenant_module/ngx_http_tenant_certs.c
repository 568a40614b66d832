
/*
 * Certificates in shared memory, keyed by the host name they answer for
 * (a custom domain, or "*.parent" for a wildcard).  Each entry holds the
 * DER chain and the DER private key, opened from the registry's sealed
 * copy once, when it is loaded: a handshake never parses PEM, never asks
 * the registry and never decrypts.  The worker that listens for registry
 * changes loads the whole table in chunks after each (re)connect and each
 * notified change on its own; every worker reads.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include "ngx_http_tenant_certs.h"
#include "ngx_http_tenant_host.h"
#include "ngx_http_tenant_pg.h"


#define NGX_HTTP_TENANT_CERTS_CHUNK  500


typedef struct {
    ngx_str_node_t                  sn;        /* sn.str: the host */
    uint32_t                        serial;
    uint32_t                        generation;
    u_short                         chain_len;
    u_short                         key_len;
    u_char                          tenant_len;
    u_char                          data[1];   /* host, tenant, chain, key */
} ngx_http_tenant_cert_node_t;


typedef struct {
    ngx_http_tenant_certs_t        *certs;
    ngx_http_tenant_pg_query_t      query;
    ngx_uint_t                      full;      /* the whole table, in chunks */
    uint32_t                        generation;
    u_char                          last[256];
    ngx_uint_t                      rows;
} ngx_http_tenant_certs_load_t;


static ngx_int_t ngx_http_tenant_certs_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_tenant_cert_node_t *ngx_http_tenant_certs_lookup(
    ngx_http_tenant_certs_t *certs, u_char *name, size_t len);
static void ngx_http_tenant_certs_next(ngx_http_tenant_certs_load_t *ld);
static void ngx_http_tenant_certs_rows(ngx_http_tenant_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_tenant_certs_row(ngx_http_tenant_certs_load_t *ld,
    PGresult *res, int i);
static ngx_int_t ngx_http_tenant_certs_put(ngx_http_tenant_certs_t *certs,
    ngx_str_t *host, ngx_str_t *tenant, ngx_str_t *chain, ngx_str_t *key,
    uint32_t generation);
static void ngx_http_tenant_certs_delete(ngx_http_tenant_certs_t *certs,
    u_char *host, size_t len);
static void ngx_http_tenant_certs_sweep(ngx_http_tenant_certs_t *certs,
    uint32_t generation);
static void ngx_http_tenant_certs_free_node(ngx_http_tenant_certs_t *certs,
    ngx_http_tenant_cert_node_t *cn);


static const char  ngx_http_tenant_certs_chunk_sql[] =
    "SELECT host, coalesce(tenant_id, ''),"
    "       replace(encode(chain, 'base64'), E'\\n', ''),"
    "       encode(key_nonce, 'hex'),"
    "       replace(encode(key_sealed, 'base64'), E'\\n', '')"
    "  FROM certificates WHERE host > $1 ORDER BY host"
    " LIMIT " ngx_value(NGX_HTTP_TENANT_CERTS_CHUNK);

static const char  ngx_http_tenant_certs_one_sql[] =
    "SELECT host, coalesce(tenant_id, ''),"
    "       replace(encode(chain, 'base64'), E'\\n', ''),"
    "       encode(key_nonce, 'hex'),"
    "       replace(encode(key_sealed, 'base64'), E'\\n', '')"
    "  FROM certificates WHERE host = $1";


char *
ngx_http_tenant_certs_zone(ngx_conf_t *cf, ngx_str_t *name, ssize_t size,
    ngx_str_t *key_file, ngx_shm_zone_t **zone)
{
    char                      err[512];
    ngx_str_t                 path;
    ngx_http_tenant_certs_t  *certs;

    certs = ngx_pcalloc(cf->pool, sizeof(ngx_http_tenant_certs_t));
    if (certs == NULL) {
        return NGX_CONF_ERROR;
    }

    path = *key_file;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* read once, by the master, at configuration time: a worker never
     * touches the file */
    if (tenant_seal_key_load((char *) path.data, certs->key, err,
                             sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "tenant_ssl_zone: %s", err);
        return NGX_CONF_ERROR;
    }

    certs->size = size;

    *zone = ngx_shared_memory_add(cf, name, size, &ngx_http_tenant_certs_zone);
    if (*zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if ((*zone)->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", name);
        return NGX_CONF_ERROR;
    }

    (*zone)->init = ngx_http_tenant_certs_init_zone;
    (*zone)->data = certs;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_tenant_certs_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_tenant_certs_t  *ocerts = data;

    ngx_http_tenant_certs_t  *certs;

    certs = shm_zone->data;

    if (ocerts) {
        /* reload: the loaded certificates keep serving */
        certs->sh = ocerts->sh;
        certs->shpool = ocerts->shpool;
        return NGX_OK;
    }

    certs->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        certs->sh = certs->shpool->data;
        return NGX_OK;
    }

    certs->sh = ngx_slab_calloc(certs->shpool,
                                sizeof(ngx_http_tenant_certs_sh_t));
    if (certs->sh == NULL) {
        return NGX_ERROR;
    }

    certs->shpool->data = certs->sh;

    ngx_rbtree_init(&certs->sh->rbtree, &certs->sh->sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&certs->sh->acme, &certs->sh->acme_sentinel,
                    ngx_str_rbtree_insert_value);

    certs->shpool->log_nomem = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_tenant_certs_find(ngx_http_tenant_certs_t *certs, u_char *name,
    size_t len, ngx_pool_t *pool, ngx_http_tenant_cert_t *out)
{
    u_char                       *p, wild[256];
    ngx_http_tenant_cert_node_t  *cn;

    ngx_shmtx_lock(&certs->shpool->mutex);

    cn = ngx_http_tenant_certs_lookup(certs, name, len);

    if (cn == NULL) {
        /* "*.parent": a wildcard covers one label */
        p = ngx_strlchr(name, name + len, '.');

        if (p && (size_t) (name + len - p) + 1 <= sizeof(wild)) {
            wild[0] = '*';
            ngx_memcpy(wild + 1, p, name + len - p);
            cn = ngx_http_tenant_certs_lookup(certs, wild,
                                              name + len - p + 1);
        }
    }

    if (cn == NULL) {
        ngx_shmtx_unlock(&certs->shpool->mutex);
        return NGX_DECLINED;
    }

    out->serial = cn->serial;
    out->host_len = ngx_min(cn->sn.str.len, sizeof(out->host));
    ngx_memcpy(out->host, cn->sn.str.data, out->host_len);
    out->tenant_len = ngx_min(cn->tenant_len, sizeof(out->tenant));
    ngx_memcpy(out->tenant, cn->data + cn->sn.str.len, out->tenant_len);

    out->chain = NULL;
    out->key = NULL;

    if (pool) {
        out->chain = ngx_pnalloc(pool, cn->chain_len);
        out->key = ngx_pnalloc(pool, cn->key_len);

        if (out->chain == NULL || out->key == NULL) {
            ngx_shmtx_unlock(&certs->shpool->mutex);
            return NGX_ERROR;
        }

        p = cn->data + cn->sn.str.len + cn->tenant_len;
        out->chain_len = cn->chain_len;
        ngx_memcpy(out->chain, p, cn->chain_len);
        out->key_len = cn->key_len;
        ngx_memcpy(out->key, p + cn->chain_len, cn->key_len);
    }

    ngx_shmtx_unlock(&certs->shpool->mutex);

    return NGX_OK;
}


static ngx_http_tenant_cert_node_t *
ngx_http_tenant_certs_lookup(ngx_http_tenant_certs_t *certs, u_char *name,
    size_t len)
{
    ngx_str_t  s;

    s.data = name;
    s.len = len;

    return (ngx_http_tenant_cert_node_t *)
               ngx_str_rbtree_lookup(&certs->sh->rbtree, &s,
                                     ngx_crc32_short(name, len));
}


void
ngx_http_tenant_certs_load(ngx_http_tenant_certs_t *certs)
{
    ngx_http_tenant_certs_load_t  *ld;

    if ((ngx_pid_t) certs->sh->loader == ngx_pid) {
        return;     /* under way */
    }

    ld = ngx_calloc(sizeof(ngx_http_tenant_certs_load_t), ngx_cycle->log);
    if (ld == NULL) {
        return;
    }

    certs->sh->loader = ngx_pid;

    ld->certs = certs;
    ld->full = 1;
    ld->generation = (uint32_t) ngx_atomic_fetch_add(&certs->sh->generation,
                                                     1) + 1;

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "tenant: loading the certificates");

    ngx_http_tenant_certs_next(ld);
}


void
ngx_http_tenant_certs_changed(ngx_http_tenant_certs_t *certs,
    u_char *payload, size_t len)
{
    ngx_http_tenant_certs_load_t  *ld;

    if (len == 1 && payload[0] == '*') {
        ngx_http_tenant_certs_load(certs);
        return;
    }

    if (len == 0 || len >= sizeof(ld->last)) {
        return;
    }

    ld = ngx_calloc(sizeof(ngx_http_tenant_certs_load_t), ngx_cycle->log);
    if (ld == NULL) {
        return;
    }

    ld->certs = certs;
    ngx_memcpy(ld->last, payload, len);

    ld->query.sql = ngx_http_tenant_certs_one_sql;
    ld->query.nparams = 1;
    ld->query.params[0] = (char *) ld->last;
    ld->query.handler = ngx_http_tenant_certs_rows;
    ld->query.data = ld;

    if (ngx_http_tenant_pg_send(&ld->query) != NGX_OK) {
        /* the reconnect that follows reloads everything */
        ngx_free(ld);
    }
}


static void
ngx_http_tenant_certs_next(ngx_http_tenant_certs_load_t *ld)
{
    ld->query.sql = ngx_http_tenant_certs_chunk_sql;
    ld->query.nparams = 1;
    ld->query.params[0] = (char *) ld->last;
    ld->query.handler = ngx_http_tenant_certs_rows;
    ld->query.data = ld;

    if (ngx_http_tenant_pg_send(&ld->query) != NGX_OK) {
        (void) ngx_atomic_cmp_set(&ld->certs->sh->loader, ngx_pid, 0);
        ngx_free(ld);
    }
}


static void
ngx_http_tenant_certs_rows(ngx_http_tenant_pg_query_t *q, PGresult *res)
{
    ngx_http_tenant_certs_load_t  *ld = q->data;

    int                       i, n;
    size_t                    len;
    ngx_http_tenant_certs_t  *certs;

    certs = ld->certs;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "tenant: certificates could not be read: %s",
                      res ? PQresultErrorMessage(res) : "no answer");
        goto done;
    }

    n = PQntuples(res);

    if (!ld->full && n == 0) {
        /* deleted */
        ngx_http_tenant_certs_delete(certs, ld->last,
                                     ngx_strlen(ld->last));
        goto done;
    }

    for (i = 0; i < n; i++) {
        (void) ngx_http_tenant_certs_row(ld, res, i);
    }

    if (!ld->full) {
        goto done;
    }

    ld->rows += n;

    if (n == NGX_HTTP_TENANT_CERTS_CHUNK) {
        len = PQgetlength(res, n - 1, 0);

        if (len < sizeof(ld->last)) {
            ngx_memcpy(ld->last, PQgetvalue(res, n - 1, 0), len);
            ld->last[len] = '\0';
            ngx_http_tenant_certs_next(ld);
            return;
        }
    }

    /* the whole table seen: what it no longer has goes */
    ngx_http_tenant_certs_sweep(certs, ld->generation);
    (void) ngx_atomic_fetch_add(&certs->sh->loads, 1);

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "tenant: %ui certificates loaded", ld->rows);

done:

    if (ld->full) {
        (void) ngx_atomic_cmp_set(&certs->sh->loader, ngx_pid, 0);
    }

    ngx_free(ld);
}


/*
 * One row: its key opened and the entry written.  A row that does not
 * decode or open (a wrong certificate key, a row altered in the table) is
 * logged and skipped; the rest load.
 */

static ngx_int_t
ngx_http_tenant_certs_row(ngx_http_tenant_certs_load_t *ld, PGresult *res,
    int i)
{
    u_char      aad[32 + 256], nonce[TENANT_SEAL_NONCE];
    u_char     *sealed, *plain;
    size_t      alen;
    ngx_int_t   rc;
    ngx_str_t   host, tenant, b64, chain, key, text;

    host.data = (u_char *) PQgetvalue(res, i, 0);
    host.len = PQgetlength(res, i, 0);
    tenant.data = (u_char *) PQgetvalue(res, i, 1);
    tenant.len = PQgetlength(res, i, 1);

    rc = NGX_ERROR;
    chain.data = NULL;
    sealed = NULL;
    plain = NULL;

    if (host.len == 0 || host.len > 253 || tenant.len > 63) {
        goto failed;
    }

    b64.data = (u_char *) PQgetvalue(res, i, 2);
    b64.len = PQgetlength(res, i, 2);

    chain.data = ngx_alloc(ngx_base64_decoded_length(b64.len), ngx_cycle->log);
    if (chain.data == NULL || ngx_decode_base64(&chain, &b64) != NGX_OK
        || chain.len == 0 || chain.len > 65535)
    {
        goto failed;
    }

    text.data = (u_char *) PQgetvalue(res, i, 3);
    text.len = PQgetlength(res, i, 3);

    if (text.len != 2 * TENANT_SEAL_NONCE
        || tenant_hex_decode(nonce, (char *) text.data, TENANT_SEAL_NONCE)
           != 0)
    {
        goto failed;
    }

    b64.data = (u_char *) PQgetvalue(res, i, 4);
    b64.len = PQgetlength(res, i, 4);

    sealed = ngx_alloc(ngx_base64_decoded_length(b64.len), ngx_cycle->log);
    key.data = sealed;

    if (sealed == NULL || ngx_decode_base64(&key, &b64) != NGX_OK
        || key.len <= TENANT_SEAL_TAG || key.len > 8192)
    {
        goto failed;
    }

    plain = ngx_alloc(key.len, ngx_cycle->log);
    if (plain == NULL) {
        goto failed;
    }

    /* "ngx_tenant/cert/1" NUL host, as the writer sealed it */
    alen = ngx_cpymem(ngx_cpymem(aad, "ngx_tenant/cert/1", 18), host.data,
                      host.len)
           - aad;

    if (tenant_unseal(ld->certs->key, aad, alen, nonce, key.data, key.len,
                      plain)
        != 0)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tenant: the key of certificate \"%V\" does not open "
                      "(another certificate key, or a row altered): "
                      "skipped", &host);
        (void) ngx_atomic_fetch_add(&ld->certs->sh->refused, 1);
        rc = NGX_DECLINED;
        goto done;
    }

    key.data = plain;
    key.len -= TENANT_SEAL_TAG;

    /*
     * A notified change takes the generation current when it is written:
     * a full load under way keeps it, as if it had loaded it itself.
     */
    rc = ngx_http_tenant_certs_put(ld->certs, &host, &tenant, &chain, &key,
                                   ld->full ? ld->generation
                                   : (uint32_t) ld->certs->sh->generation);

    explicit_bzero(plain, key.len);

    goto done;

failed:

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "tenant: certificate \"%V\" is not readable: skipped",
                  &host);
    (void) ngx_atomic_fetch_add(&ld->certs->sh->refused, 1);

done:

    if (chain.data) {
        ngx_free(chain.data);
    }

    if (sealed) {
        ngx_free(sealed);
    }

    if (plain) {
        ngx_free(plain);
    }

    return rc;
}


static ngx_int_t
ngx_http_tenant_certs_put(ngx_http_tenant_certs_t *certs, ngx_str_t *host,
    ngx_str_t *tenant, ngx_str_t *chain, ngx_str_t *key, uint32_t generation)
{
    u_char                       *p;
    size_t                        size;
    ngx_http_tenant_cert_node_t  *cn;

    size = offsetof(ngx_http_tenant_cert_node_t, data)
           + host->len + tenant->len + chain->len + key->len;

    ngx_shmtx_lock(&certs->shpool->mutex);

    cn = ngx_http_tenant_certs_lookup(certs, host->data, host->len);
    if (cn) {
        ngx_http_tenant_certs_free_node(certs, cn);
    }

    cn = ngx_slab_alloc_locked(certs->shpool, size);

    if (cn == NULL) {
        certs->sh->zone_full++;
        ngx_shmtx_unlock(&certs->shpool->mutex);

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tenant: tenant_ssl_zone is full: certificate \"%V\" "
                      "not loaded", host);
        return NGX_DECLINED;
    }

    cn->serial = (uint32_t) ++certs->sh->serial;
    cn->generation = generation;
    cn->tenant_len = (u_char) tenant->len;
    cn->chain_len = (u_short) chain->len;
    cn->key_len = (u_short) key->len;

    p = ngx_cpymem(cn->data, host->data, host->len);
    p = ngx_cpymem(p, tenant->data, tenant->len);
    p = ngx_cpymem(p, chain->data, chain->len);
    ngx_memcpy(p, key->data, key->len);

    cn->sn.str.data = cn->data;
    cn->sn.str.len = host->len;
    cn->sn.node.key = ngx_crc32_short(host->data, host->len);

    ngx_rbtree_insert(&certs->sh->rbtree, &cn->sn.node);

    certs->sh->count++;
    certs->sh->bytes += size;

    ngx_shmtx_unlock(&certs->shpool->mutex);

    return NGX_OK;
}


static void
ngx_http_tenant_certs_delete(ngx_http_tenant_certs_t *certs, u_char *host,
    size_t len)
{
    ngx_http_tenant_cert_node_t  *cn;

    ngx_shmtx_lock(&certs->shpool->mutex);

    cn = ngx_http_tenant_certs_lookup(certs, host, len);
    if (cn) {
        ngx_http_tenant_certs_free_node(certs, cn);
    }

    ngx_shmtx_unlock(&certs->shpool->mutex);
}


/* after a full load: entries the table no longer has */

static void
ngx_http_tenant_certs_sweep(ngx_http_tenant_certs_t *certs,
    uint32_t generation)
{
    ngx_rbtree_node_t            *node, *next, *sentinel;
    ngx_http_tenant_cert_node_t  *cn;

    ngx_shmtx_lock(&certs->shpool->mutex);

    sentinel = certs->sh->rbtree.sentinel;

    if (certs->sh->rbtree.root != sentinel) {
        node = ngx_rbtree_min(certs->sh->rbtree.root, sentinel);

        while (node) {
            next = ngx_rbtree_next(&certs->sh->rbtree, node);
            cn = (ngx_http_tenant_cert_node_t *) node;

            if (cn->generation != generation) {
                ngx_http_tenant_certs_free_node(certs, cn);
            }

            node = next;
        }
    }

    ngx_shmtx_unlock(&certs->shpool->mutex);
}


static void
ngx_http_tenant_certs_free_node(ngx_http_tenant_certs_t *certs,
    ngx_http_tenant_cert_node_t *cn)
{
    size_t  size;

    size = offsetof(ngx_http_tenant_cert_node_t, data) + cn->sn.str.len
           + cn->tenant_len + cn->chain_len + cn->key_len;

    ngx_rbtree_delete(&certs->sh->rbtree, &cn->sn.node);

    /* the key does not linger in a free slab slot */
    explicit_bzero(cn->data, size - offsetof(ngx_http_tenant_cert_node_t,
                                             data));

    ngx_slab_free_locked(certs->shpool, cn);

    certs->sh->count--;
    certs->sh->bytes -= size;
}


size_t
ngx_http_tenant_certs_used(ngx_http_tenant_certs_t *certs)
{
    size_t  free;

    ngx_shmtx_lock(&certs->shpool->mutex);
    free = certs->shpool->pfree * ngx_pagesize;
    ngx_shmtx_unlock(&certs->shpool->mutex);

    return certs->size > free ? certs->size - free : 0;
}
