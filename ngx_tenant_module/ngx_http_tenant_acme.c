
/*
 * ACME HTTP-01 answers.  A CA asks any edge for
 * http://{host}/.well-known/acme-challenge/{token}; every edge answers it
 * from shared memory (the certificate zone's), filled from the registry's
 * acme_challenges by the listening worker as rows come and go: no reload,
 * and no registry query on the CA's request.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include "ngx_http_tenant_acme.h"
#include "ngx_http_tenant_pg.h"


typedef struct {
    ngx_str_node_t                  sn;        /* "host token" */
    uint32_t                        generation;
    u_short                         answer_len;
    u_char                          data[1];   /* key, answer */
} ngx_http_tenant_acme_node_t;


typedef struct {
    ngx_http_tenant_certs_t        *certs;
    ngx_http_tenant_pg_query_t      query;
    ngx_uint_t                      full;
    uint32_t                        generation;
    u_char                          host[256];
    u_char                          token[132];
} ngx_http_tenant_acme_load_t;


static void ngx_http_tenant_acme_rows(ngx_http_tenant_pg_query_t *q,
    PGresult *res);
static ngx_http_tenant_acme_node_t *ngx_http_tenant_acme_lookup(
    ngx_http_tenant_certs_t *certs, ngx_str_t *key);
static void ngx_http_tenant_acme_put(ngx_http_tenant_certs_t *certs,
    ngx_str_t *key, ngx_str_t *answer, uint32_t generation);
static void ngx_http_tenant_acme_delete(ngx_http_tenant_certs_t *certs,
    ngx_str_t *key, uint32_t before);


static const char  ngx_http_tenant_acme_all_sql[] =
    "SELECT host, token, key_authorization FROM acme_challenges"
    " WHERE expires_at > now() LIMIT 10000";

static const char  ngx_http_tenant_acme_one_sql[] =
    "SELECT host, token, key_authorization FROM acme_challenges"
    " WHERE host = $1 AND token = $2 AND expires_at > now()";


ngx_int_t
ngx_http_tenant_acme_answer(ngx_http_tenant_certs_t *certs, ngx_str_t *host,
    ngx_str_t *token, ngx_pool_t *pool, ngx_str_t *out)
{
    u_char                       buf[256 + 1 + 128];
    ngx_str_t                    key;
    ngx_http_tenant_acme_node_t  *an;

    if (host->len > 255 || token->len == 0 || token->len > 128) {
        return NGX_DECLINED;
    }

    key.data = buf;
    key.len = ngx_sprintf(buf, "%V %V", host, token) - buf;

    ngx_shmtx_lock(&certs->shpool->mutex);

    an = ngx_http_tenant_acme_lookup(certs, &key);

    if (an == NULL) {
        ngx_shmtx_unlock(&certs->shpool->mutex);
        return NGX_DECLINED;
    }

    out->data = ngx_pnalloc(pool, an->answer_len);
    if (out->data == NULL) {
        ngx_shmtx_unlock(&certs->shpool->mutex);
        return NGX_ERROR;
    }

    out->len = an->answer_len;
    ngx_memcpy(out->data, an->data + an->sn.str.len, an->answer_len);

    ngx_shmtx_unlock(&certs->shpool->mutex);

    return NGX_OK;
}


void
ngx_http_tenant_acme_load(ngx_http_tenant_certs_t *certs)
{
    ngx_http_tenant_acme_load_t  *ld;

    ld = ngx_calloc(sizeof(ngx_http_tenant_acme_load_t), ngx_cycle->log);
    if (ld == NULL) {
        return;
    }

    ld->certs = certs;
    ld->full = 1;
    ld->generation = (uint32_t) ngx_atomic_fetch_add(
                                    &certs->sh->acme_generation, 1) + 1;

    ld->query.sql = ngx_http_tenant_acme_all_sql;
    ld->query.nparams = 0;
    ld->query.handler = ngx_http_tenant_acme_rows;
    ld->query.data = ld;

    if (ngx_http_tenant_pg_send(&ld->query) != NGX_OK) {
        ngx_free(ld);
    }
}


void
ngx_http_tenant_acme_changed(ngx_http_tenant_certs_t *certs, u_char *payload,
    size_t len)
{
    u_char                       *sp;
    ngx_http_tenant_acme_load_t  *ld;

    if (len == 1 && payload[0] == '*') {
        ngx_http_tenant_acme_load(certs);
        return;
    }

    sp = ngx_strlchr(payload, payload + len, ' ');

    if (sp == NULL || sp == payload || (size_t) (sp - payload) >= 256
        || payload + len - sp - 1 == 0 || payload + len - sp - 1 >= 132)
    {
        return;
    }

    ld = ngx_calloc(sizeof(ngx_http_tenant_acme_load_t), ngx_cycle->log);
    if (ld == NULL) {
        return;
    }

    ld->certs = certs;
    ngx_memcpy(ld->host, payload, sp - payload);
    ngx_memcpy(ld->token, sp + 1, payload + len - sp - 1);

    ld->query.sql = ngx_http_tenant_acme_one_sql;
    ld->query.nparams = 2;
    ld->query.params[0] = (char *) ld->host;
    ld->query.params[1] = (char *) ld->token;
    ld->query.handler = ngx_http_tenant_acme_rows;
    ld->query.data = ld;

    if (ngx_http_tenant_pg_send(&ld->query) != NGX_OK) {
        ngx_free(ld);
    }
}


static void
ngx_http_tenant_acme_rows(ngx_http_tenant_pg_query_t *q, PGresult *res)
{
    ngx_http_tenant_acme_load_t  *ld = q->data;

    int        i, n;
    u_char     buf[256 + 1 + 128];
    uint32_t   generation;
    ngx_str_t  key, answer;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "tenant: ACME challenges could not be read: %s",
                      res ? PQresultErrorMessage(res) : "no answer");
        ngx_free(ld);
        return;
    }

    generation = ld->full ? ld->generation
                          : (uint32_t) ld->certs->sh->acme_generation;

    n = PQntuples(res);

    if (!ld->full && n == 0) {
        key.data = buf;
        key.len = ngx_sprintf(buf, "%s %s", ld->host, ld->token) - buf;
        ngx_http_tenant_acme_delete(ld->certs, &key, 0);
        ngx_free(ld);
        return;
    }

    for (i = 0; i < n; i++) {
        if (PQgetlength(res, i, 0) > 255 || PQgetlength(res, i, 1) > 128
            || PQgetlength(res, i, 2) > 300)
        {
            continue;
        }

        key.data = buf;
        key.len = ngx_sprintf(buf, "%s %s", PQgetvalue(res, i, 0),
                              PQgetvalue(res, i, 1))
                  - buf;
        answer.data = (u_char *) PQgetvalue(res, i, 2);
        answer.len = PQgetlength(res, i, 2);

        ngx_http_tenant_acme_put(ld->certs, &key, &answer, generation);
    }

    if (ld->full) {
        /* what the table no longer has goes */
        ngx_http_tenant_acme_delete(ld->certs, NULL, generation);
    }

    ngx_free(ld);
}


static ngx_http_tenant_acme_node_t *
ngx_http_tenant_acme_lookup(ngx_http_tenant_certs_t *certs, ngx_str_t *key)
{
    return (ngx_http_tenant_acme_node_t *)
               ngx_str_rbtree_lookup(&certs->sh->acme, key,
                                     ngx_crc32_short(key->data, key->len));
}


static void
ngx_http_tenant_acme_put(ngx_http_tenant_certs_t *certs, ngx_str_t *key,
    ngx_str_t *answer, uint32_t generation)
{
    ngx_http_tenant_acme_node_t  *an;

    ngx_shmtx_lock(&certs->shpool->mutex);

    an = ngx_http_tenant_acme_lookup(certs, key);
    if (an) {
        ngx_rbtree_delete(&certs->sh->acme, &an->sn.node);
        ngx_slab_free_locked(certs->shpool, an);
        certs->sh->acme_count--;
    }

    an = ngx_slab_alloc_locked(certs->shpool,
                               offsetof(ngx_http_tenant_acme_node_t, data)
                               + key->len + answer->len);
    if (an == NULL) {
        ngx_shmtx_unlock(&certs->shpool->mutex);
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tenant: tenant_ssl_zone is full: ACME challenge "
                      "\"%V\" not loaded", key);
        return;
    }

    an->generation = generation;
    an->answer_len = (u_short) answer->len;
    ngx_memcpy(ngx_cpymem(an->data, key->data, key->len), answer->data,
               answer->len);

    an->sn.str.data = an->data;
    an->sn.str.len = key->len;
    an->sn.node.key = ngx_crc32_short(key->data, key->len);

    ngx_rbtree_insert(&certs->sh->acme, &an->sn.node);
    certs->sh->acme_count++;

    ngx_shmtx_unlock(&certs->shpool->mutex);
}


/* one entry by key; or (key NULL) every entry not of this generation */

static void
ngx_http_tenant_acme_delete(ngx_http_tenant_certs_t *certs, ngx_str_t *key,
    uint32_t generation)
{
    ngx_rbtree_node_t            *node, *next, *sentinel;
    ngx_http_tenant_acme_node_t  *an;

    ngx_shmtx_lock(&certs->shpool->mutex);

    sentinel = certs->sh->acme.sentinel;
    node = (key == NULL && certs->sh->acme.root != sentinel)
           ? ngx_rbtree_min(certs->sh->acme.root, sentinel) : NULL;

    if (key) {
        an = ngx_http_tenant_acme_lookup(certs, key);
        node = an ? &an->sn.node : NULL;
    }

    while (node) {
        next = key ? NULL : ngx_rbtree_next(&certs->sh->acme, node);
        an = (ngx_http_tenant_acme_node_t *) node;

        if (key || an->generation != generation) {
            ngx_rbtree_delete(&certs->sh->acme, node);
            ngx_slab_free_locked(certs->shpool, an);
            certs->sh->acme_count--;
        }

        node = next;
    }

    ngx_shmtx_unlock(&certs->shpool->mutex);
}
