
/*
 * The token keys as one small fixed table in shared memory: a few dozen
 * keys at most, read by every worker, rewritten whole by the listening
 * worker.  A worker keeps its own parsed copy (ngx_http_tenant_jwt.c) and
 * reads the table again only when its serial has moved, so a request
 * takes no lock here.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include "ngx_http_tenant_jwt_keys.h"
#include "ngx_http_tenant_pg.h"


typedef struct {
    ngx_http_tenant_jwt_keys_t     *jk;
    ngx_http_tenant_pg_query_t      query;
} ngx_http_tenant_jwt_keys_load_t;


static ngx_int_t ngx_http_tenant_jwt_keys_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_tenant_jwt_keys_rows(ngx_http_tenant_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_tenant_jwt_keys_row(PGresult *res, int i,
    ngx_http_tenant_jwt_key_t *key);


static ngx_str_t  ngx_http_tenant_jwt_keys_name = ngx_string("tenant_jwt");

/* one more than the table may hold, to tell it was cut */
static const char  ngx_http_tenant_jwt_keys_sql[] =
    "SELECT kid, alg, replace(encode(der, 'base64'), E'\\n', '')"
    "  FROM jwt_keys ORDER BY kid"
    " LIMIT " ngx_value(NGX_HTTP_TENANT_JWT_KEYS_MAX) " + 1";


ngx_shm_zone_t *
ngx_http_tenant_jwt_keys_zone(ngx_conf_t *cf, void *tag)
{
    ngx_shm_zone_t              *zone;
    ngx_http_tenant_jwt_keys_t  *jk;

    zone = ngx_shared_memory_add(cf, &ngx_http_tenant_jwt_keys_name,
                                 sizeof(ngx_http_tenant_jwt_keys_sh_t)
                                 + 8 * ngx_pagesize, tag);
    if (zone == NULL) {
        return NULL;
    }

    if (zone->data) {
        return zone;
    }

    jk = ngx_pcalloc(cf->pool, sizeof(ngx_http_tenant_jwt_keys_t));
    if (jk == NULL) {
        return NULL;
    }

    zone->init = ngx_http_tenant_jwt_keys_init_zone;
    zone->data = jk;

    return zone;
}


static ngx_int_t
ngx_http_tenant_jwt_keys_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_tenant_jwt_keys_t  *ojk = data;

    ngx_http_tenant_jwt_keys_t  *jk;

    jk = shm_zone->data;

    if (ojk) {
        /* reload: the keys keep checking tokens */
        jk->sh = ojk->sh;
        jk->shpool = ojk->shpool;
        return NGX_OK;
    }

    jk->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        jk->sh = jk->shpool->data;
        return NGX_OK;
    }

    jk->sh = ngx_slab_calloc(jk->shpool,
                             sizeof(ngx_http_tenant_jwt_keys_sh_t));
    if (jk->sh == NULL) {
        return NGX_ERROR;
    }

    jk->shpool->data = jk->sh;

    return NGX_OK;
}


ngx_uint_t
ngx_http_tenant_jwt_keys_copy(ngx_http_tenant_jwt_keys_t *jk,
    ngx_http_tenant_jwt_key_t *keys, ngx_atomic_uint_t *serial)
{
    ngx_uint_t  n;

    ngx_shmtx_lock(&jk->shpool->mutex);

    n = jk->sh->nkeys;
    ngx_memcpy(keys, jk->sh->keys, n * sizeof(ngx_http_tenant_jwt_key_t));
    *serial = jk->sh->serial;

    ngx_shmtx_unlock(&jk->shpool->mutex);

    return n;
}


void
ngx_http_tenant_jwt_keys_load(ngx_http_tenant_jwt_keys_t *jk)
{
    ngx_http_tenant_jwt_keys_load_t  *ld;

    if (jk->loading) {
        /*
         * One load at a time, then one more if a change came meanwhile:
         * two in flight on two connections could end in the wrong order,
         * and the older set would stay.
         */
        jk->again = 1;
        return;
    }

    ld = ngx_calloc(sizeof(ngx_http_tenant_jwt_keys_load_t), ngx_cycle->log);
    if (ld == NULL) {
        return;
    }

    jk->loading = 1;
    jk->again = 0;

    ld->jk = jk;
    ld->query.sql = ngx_http_tenant_jwt_keys_sql;
    ld->query.nparams = 0;
    ld->query.handler = ngx_http_tenant_jwt_keys_rows;
    ld->query.data = ld;

    if (ngx_http_tenant_pg_send(&ld->query) != NGX_OK) {
        /* the reconnect that follows loads them */
        jk->loading = 0;
        ngx_free(ld);
    }
}


static void
ngx_http_tenant_jwt_keys_rows(ngx_http_tenant_pg_query_t *q, PGresult *res)
{
    ngx_http_tenant_jwt_keys_load_t  *ld = q->data;

    int                          i, n;
    ngx_uint_t                   nkeys;
    ngx_http_tenant_jwt_key_t   *keys;
    ngx_http_tenant_jwt_keys_t  *jk;

    jk = ld->jk;
    keys = NULL;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* the keys loaded before keep checking tokens */
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "tenant: token keys could not be read: %s",
                      res ? PQresultErrorMessage(res) : "no answer");
        goto done;
    }

    keys = ngx_alloc(NGX_HTTP_TENANT_JWT_KEYS_MAX
                     * sizeof(ngx_http_tenant_jwt_key_t), ngx_cycle->log);
    if (keys == NULL) {
        goto done;
    }

    n = PQntuples(res);
    nkeys = 0;

    for (i = 0; i < n; i++) {

        if (nkeys == NGX_HTTP_TENANT_JWT_KEYS_MAX) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "tenant: more than %d token keys: the rest are "
                          "not loaded", NGX_HTTP_TENANT_JWT_KEYS_MAX);
            break;
        }

        if (ngx_http_tenant_jwt_keys_row(res, i, &keys[nkeys]) == NGX_OK) {
            nkeys++;
            continue;
        }

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tenant: token key \"%s\" is not readable: skipped",
                      PQgetvalue(res, i, 0));
    }

    ngx_shmtx_lock(&jk->shpool->mutex);

    ngx_memcpy(jk->sh->keys, keys, nkeys * sizeof(ngx_http_tenant_jwt_key_t));
    jk->sh->nkeys = nkeys;
    jk->sh->serial++;

    ngx_shmtx_unlock(&jk->shpool->mutex);

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "tenant: %ui token keys loaded", nkeys);

done:

    if (keys) {
        ngx_free(keys);
    }

    ngx_free(ld);

    jk->loading = 0;

    if (jk->again) {
        ngx_http_tenant_jwt_keys_load(jk);
    }
}


static ngx_int_t
ngx_http_tenant_jwt_keys_row(PGresult *res, int i,
    ngx_http_tenant_jwt_key_t *key)
{
    ngx_str_t   kid, alg, b64, der;

    kid.data = (u_char *) PQgetvalue(res, i, 0);
    kid.len = PQgetlength(res, i, 0);
    alg.data = (u_char *) PQgetvalue(res, i, 1);
    alg.len = PQgetlength(res, i, 1);
    b64.data = (u_char *) PQgetvalue(res, i, 2);
    b64.len = PQgetlength(res, i, 2);

    if (kid.len == 0 || kid.len > NGX_HTTP_TENANT_JWT_KID_LEN
        || ngx_base64_decoded_length(b64.len) > NGX_HTTP_TENANT_JWT_DER_LEN)
    {
        return NGX_ERROR;
    }

    if (alg.len == 5 && ngx_strncmp(alg.data, "RS256", 5) == 0) {
        key->alg = NGX_HTTP_TENANT_JWT_RS256;

    } else if (alg.len == 5 && ngx_strncmp(alg.data, "ES256", 5) == 0) {
        key->alg = NGX_HTTP_TENANT_JWT_ES256;

    } else {
        return NGX_ERROR;
    }

    der.data = key->der;

    if (ngx_decode_base64(&der, &b64) != NGX_OK || der.len == 0) {
        return NGX_ERROR;
    }

    ngx_memcpy(key->kid, kid.data, kid.len);

    key->kid_len = (u_short) kid.len;
    key->der_len = (u_short) der.len;

    return NGX_OK;
}
