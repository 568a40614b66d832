
/*
 * The public keys tenant_jwt checks tokens with, in shared memory: loaded
 * from the registry's jwt_keys and reloaded whole on each notified change,
 * so a rotation reaches every worker without a reload.
 */


#ifndef _NGX_HTTP_TENANT_JWT_KEYS_H_INCLUDED_
#define _NGX_HTTP_TENANT_JWT_KEYS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_TENANT_JWT_KEYS_MAX   64     /* as migration 019 holds */
#define NGX_HTTP_TENANT_JWT_KID_LEN    128
#define NGX_HTTP_TENANT_JWT_DER_LEN    1200

#define NGX_HTTP_TENANT_JWT_RS256      1
#define NGX_HTTP_TENANT_JWT_ES256      2


typedef struct {
    u_char                          kid[NGX_HTTP_TENANT_JWT_KID_LEN];
    u_char                          der[NGX_HTTP_TENANT_JWT_DER_LEN];
    u_short                         kid_len;
    u_short                         der_len;
    ngx_uint_t                      alg;
} ngx_http_tenant_jwt_key_t;


typedef struct {
    ngx_atomic_t                    serial;    /* moves on every load; 0:
                                                  never loaded */
    ngx_uint_t                      nkeys;
    ngx_http_tenant_jwt_key_t       keys[NGX_HTTP_TENANT_JWT_KEYS_MAX];
} ngx_http_tenant_jwt_keys_sh_t;


typedef struct {
    ngx_http_tenant_jwt_keys_sh_t  *sh;
    ngx_slab_pool_t                *shpool;

    /* the listening worker's own */
    ngx_uint_t                      loading;
    ngx_uint_t                      again;
} ngx_http_tenant_jwt_keys_t;


/* the zone "tenant_jwt", made once whatever asks for it first */
ngx_shm_zone_t *ngx_http_tenant_jwt_keys_zone(ngx_conf_t *cf, void *tag);

/*
 * The keys, copied out under the zone's lock into keys (room for _MAX):
 * their number; *serial is the set's, to tell when a copy is stale.
 */
ngx_uint_t ngx_http_tenant_jwt_keys_copy(ngx_http_tenant_jwt_keys_t *jk,
    ngx_http_tenant_jwt_key_t *keys, ngx_atomic_uint_t *serial);

/* the whole table read again: at each (re)connect and "jwt:*" */
void ngx_http_tenant_jwt_keys_load(ngx_http_tenant_jwt_keys_t *jk);


#endif /* _NGX_HTTP_TENANT_JWT_KEYS_H_INCLUDED_ */
