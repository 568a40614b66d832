
/*
 * Every routable host, as a Bloom filter in shared memory, so that a flood
 * of random hosts costs the registry nothing: a host that is certainly not
 * a tenant's (no tenant of its pattern name, no custom domain of that name)
 * is answered without a query.  Keys are "t:<tenant>" and "h:<host>".
 *
 * Two bit arrays: one answers while the listener worker fills the other
 * from the registry in chunks (never blocking: one query at a time on the
 * pool), then they swap.  Changes arriving by NOTIFY are added to both, so
 * nothing added during a load is lost.  A Bloom filter cannot forget: a
 * deleted tenant stays "maybe" (costing a query) until the next load, on
 * every listener (re)connect and every hour.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include "ngx_http_tenant_filter.h"
#include "ngx_http_tenant_conf.h"
#include "ngx_http_tenant_pg.h"


#define NGX_HTTP_TENANT_FILTER_PROBES  7
#define NGX_HTTP_TENANT_FILTER_CHUNK   "5000"
#define NGX_HTTP_TENANT_FILTER_WORD    (8 * sizeof(ngx_atomic_uint_t))


typedef struct {
    ngx_http_tenant_pg_query_t      query;
    ngx_http_tenant_filter_t       *filter;
    ngx_uint_t                      spare;
    ngx_uint_t                      phase;     /* 0 tenants, 1 hosts */
    u_char                          after[256];
} ngx_http_tenant_filter_load_t;


static ngx_int_t ngx_http_tenant_filter_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_tenant_filter_set(ngx_atomic_uint_t *array,
    size_t words, u_char prefix, ngx_str_t *key);
static void ngx_http_tenant_filter_next(ngx_http_tenant_filter_load_t *ld);
static void ngx_http_tenant_filter_chunk(ngx_http_tenant_pg_query_t *q,
    PGresult *res);


static const char  *ngx_http_tenant_filter_sql[] = {
    "SELECT id FROM tenants WHERE id > $1 ORDER BY id LIMIT "
        NGX_HTTP_TENANT_FILTER_CHUNK,
    "SELECT host FROM tenant_hosts WHERE host > $1 ORDER BY host LIMIT "
        NGX_HTTP_TENANT_FILTER_CHUNK
};


/* tenant_host_filter name:size: size is one array's; the zone holds two */

char *
ngx_http_tenant_filter_zone(ngx_conf_t *cf, ngx_str_t *value,
    ngx_shm_zone_t **zone)
{
    ssize_t                    size;
    ngx_str_t                  name;
    ngx_http_tenant_filter_t  *f;

    if (ngx_http_tenant_conf_zone(cf, value, 4096, &name, &size)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    f = ngx_pcalloc(cf->pool, sizeof(ngx_http_tenant_filter_t));
    if (f == NULL) {
        return NGX_CONF_ERROR;
    }

    f->size = ngx_align(size, sizeof(ngx_atomic_uint_t));

    /* two arrays, and the slab pool's own page table (24 bytes a page) */
    *zone = ngx_shared_memory_add(cf, &name,
                                  2 * f->size + 2 * f->size / 64
                                  + 32 * ngx_pagesize,
                                  &ngx_http_tenant_filter_zone);
    if (*zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if ((*zone)->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    (*zone)->init = ngx_http_tenant_filter_init_zone;
    (*zone)->data = f;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_tenant_filter_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_tenant_filter_t  *of = data;

    ngx_http_tenant_filter_t  *f;

    f = shm_zone->data;

    if (of) {
        /* reload: the loaded set is kept */
        f->sh = of->sh;
        f->shpool = of->shpool;
        return NGX_OK;
    }

    f->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        f->sh = f->shpool->data;
        return NGX_OK;
    }

    f->sh = ngx_slab_calloc(f->shpool, sizeof(ngx_http_tenant_filter_sh_t));
    if (f->sh == NULL) {
        return NGX_ERROR;
    }

    f->shpool->data = f->sh;
    f->sh->words = f->size / sizeof(ngx_atomic_uint_t);

    f->sh->array[0] = ngx_slab_calloc(f->shpool, f->size);
    f->sh->array[1] = ngx_slab_calloc(f->shpool, f->size);

    if (f->sh->array[0] == NULL || f->sh->array[1] == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* double hashing over two independent hashes of "<prefix>:<key>" */

#define ngx_http_tenant_filter_hashes(prefix, key, h1, h2)                   \
    {                                                                        \
        uint32_t  seed;                                                      \
        u_char    head[2];                                                   \
                                                                             \
        head[0] = prefix;                                                    \
        head[1] = ':';                                                       \
        ngx_crc32_init(seed);                                                \
        ngx_crc32_update(&seed, head, 2);                                    \
        ngx_crc32_update(&seed, (key)->data, (key)->len);                    \
        ngx_crc32_final(seed);                                               \
        h1 = ngx_murmur_hash2((key)->data, (key)->len) ^ (prefix * 0x9e37); \
        h2 = seed | 1;                                                       \
    }


static void
ngx_http_tenant_filter_set(ngx_atomic_uint_t *array, size_t words,
    u_char prefix, ngx_str_t *key)
{
    uint32_t            h1, h2;
    uint64_t            bit, bits;
    ngx_uint_t          i;
    ngx_atomic_uint_t   old, mask, *w;

    ngx_http_tenant_filter_hashes(prefix, key, h1, h2);

    bits = (uint64_t) words * NGX_HTTP_TENANT_FILTER_WORD;

    for (i = 0; i < NGX_HTTP_TENANT_FILTER_PROBES; i++) {
        bit = ((uint64_t) h1 + (uint64_t) i * h2) % bits;
        w = &array[bit / NGX_HTTP_TENANT_FILTER_WORD];
        mask = (ngx_atomic_uint_t) 1 << (bit % NGX_HTTP_TENANT_FILTER_WORD);

        /* no atomic OR in nginx's set: compare and swap until it holds */
        for ( ;; ) {
            old = *w;

            if ((old & mask)
                || ngx_atomic_cmp_set((ngx_atomic_t *) w, old, old | mask))
            {
                break;
            }
        }
    }
}


ngx_int_t
ngx_http_tenant_filter_test(ngx_http_tenant_filter_t *f, u_char prefix,
    ngx_str_t *key)
{
    uint32_t            h1, h2;
    uint64_t            bit, bits;
    ngx_uint_t          i;
    ngx_atomic_uint_t  *array;

    if (!f->sh->ready) {
        return NGX_DECLINED;
    }

    array = f->sh->array[f->sh->active & 1];

    ngx_http_tenant_filter_hashes(prefix, key, h1, h2);

    bits = (uint64_t) f->sh->words * NGX_HTTP_TENANT_FILTER_WORD;

    for (i = 0; i < NGX_HTTP_TENANT_FILTER_PROBES; i++) {
        bit = ((uint64_t) h1 + (uint64_t) i * h2) % bits;

        if (!(array[bit / NGX_HTTP_TENANT_FILTER_WORD]
              & ((ngx_atomic_uint_t) 1 << (bit % NGX_HTTP_TENANT_FILTER_WORD))))
        {
            return 0;
        }
    }

    return 1;
}


void
ngx_http_tenant_filter_add(ngx_http_tenant_filter_t *f, u_char prefix,
    ngx_str_t *key)
{
    ngx_http_tenant_filter_set(f->sh->array[0], f->sh->words, prefix, key);
    ngx_http_tenant_filter_set(f->sh->array[1], f->sh->words, prefix, key);
}


void
ngx_http_tenant_filter_load(ngx_http_tenant_filter_t *f)
{
    ngx_http_tenant_filter_load_t  *ld;

    if ((ngx_pid_t) f->sh->loader == ngx_pid) {
        return;     /* under way */
    }

    ld = ngx_calloc(sizeof(ngx_http_tenant_filter_load_t), ngx_cycle->log);
    if (ld == NULL) {
        return;
    }

    f->sh->loader = ngx_pid;
    f->sh->loading_keys = 0;

    ld->filter = f;
    ld->spare = 1 - (f->sh->active & 1);

    ngx_memzero(f->sh->array[ld->spare], f->size);

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "tenant: loading the host filter");

    ngx_http_tenant_filter_next(ld);
}


static void
ngx_http_tenant_filter_next(ngx_http_tenant_filter_load_t *ld)
{
    ld->query.sql = ngx_http_tenant_filter_sql[ld->phase];
    ld->query.nparams = 1;
    ld->query.params[0] = (const char *) ld->after;
    ld->query.handler = ngx_http_tenant_filter_chunk;
    ld->query.data = ld;

    if (ngx_http_tenant_pg_send(&ld->query) != NGX_OK) {
        /* no connection: the next listener (re)connect loads again */
        (void) ngx_atomic_cmp_set(&ld->filter->sh->loader, ngx_pid, 0);
        ngx_free(ld);
    }
}


static void
ngx_http_tenant_filter_chunk(ngx_http_tenant_pg_query_t *q, PGresult *res)
{
    int                             i, rows;
    size_t                          len;
    ngx_str_t                       key;
    ngx_http_tenant_filter_t       *f;
    ngx_http_tenant_filter_sh_t    *sh;
    ngx_http_tenant_filter_load_t  *ld;

    ld = q->data;
    f = ld->filter;
    sh = f->sh;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "tenant: loading the host filter failed; "
                      "every unknown host is asked for meanwhile");
        (void) ngx_atomic_cmp_set(&sh->loader, ngx_pid, 0);
        ngx_free(ld);
        return;
    }

    rows = PQntuples(res);

    for (i = 0; i < rows; i++) {
        key.data = (u_char *) PQgetvalue(res, i, 0);
        key.len = PQgetlength(res, i, 0);

        ngx_http_tenant_filter_set(sh->array[ld->spare], sh->words,
                                   ld->phase ? 'h' : 't', &key);
    }

    sh->loading_keys += rows;

    if (rows > 0) {
        len = ngx_min((size_t) PQgetlength(res, rows - 1, 0),
                      sizeof(ld->after) - 1);
        ngx_memcpy(ld->after, PQgetvalue(res, rows - 1, 0), len);
        ld->after[len] = '\0';
    }

    if (rows == ngx_atoi((u_char *) NGX_HTTP_TENANT_FILTER_CHUNK,
                         sizeof(NGX_HTTP_TENANT_FILTER_CHUNK) - 1))
    {
        ngx_http_tenant_filter_next(ld);
        return;
    }

    if (ld->phase == 0) {
        ld->phase = 1;
        ld->after[0] = '\0';
        ngx_http_tenant_filter_next(ld);
        return;
    }

    /* complete: it answers from now on */

    sh->keys = sh->loading_keys;
    sh->active = ld->spare;
    sh->ready = 1;
    (void) ngx_atomic_fetch_add(&sh->loads, 1);
    (void) ngx_atomic_cmp_set(&sh->loader, ngx_pid, 0);

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "tenant: host filter loaded: %uA keys in %uz bytes",
                  sh->keys, f->size);

    ngx_free(ld);
}
