
/*
 * A tenant's API keys, made by the platform: "tk_" + 16 hex digits (the
 * id) + "_" + 43 base64url characters (32 random bytes), as the CLI makes
 * them.  The key is in the answer once; the registry keeps the SHA-256 of
 * its secret (migration 017).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "ngx_http_tenant_api.h"
#include "ngx_http_tenant_api_validate.h"


#define NGX_HTTP_TENANT_API_KEY_LEN  (3 + 16 + 1 + 43)


typedef struct {
    u_char   key[NGX_HTTP_TENANT_API_KEY_LEN + 1];
} ngx_http_tenant_api_new_key_t;


static void ngx_http_tenant_api_key_made(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_keys_done(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);
static void ngx_http_tenant_api_key_revoked(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res);


/* POST tenants/{name}/keys {"name"}: 201 with the key, shown this once */

void
ngx_http_tenant_api_key_create(ngx_http_tenant_api_ctx_t *ctx)
{
    u_char                          id[8], secret[32], digest[32],
                                    id_hex[17], hash[2 + 64 + 1], *p;
    ngx_str_t                       tenant, name, src, dst;
    const char                     *why;
    unsigned int                    dlen;
    ngx_http_tenant_api_new_key_t  *nk;

    static const char  *known[] = { "name", NULL };

    if (ngx_http_tenant_api_name_arg(ctx, &tenant) != NGX_OK
        || ngx_http_tenant_api_only(ctx, known) != NGX_OK)
    {
        return;
    }

    why = ngx_http_tenant_api_str_max(ctx, "name", 1, 100, &name);

    if (why == NULL && name.len == 0) {
        why = "must be 1-100 characters";
    }

    if (why == NULL) {
        why = ngx_http_tenant_api_check_text(name.data, name.len, 100);
    }

    if (why) {
        ngx_http_tenant_api_error(ctx, 422, "invalid_field", why, "name");
        return;
    }

    nk = ngx_pcalloc(ctx->pool, sizeof(ngx_http_tenant_api_new_key_t));
    if (nk == NULL
        || RAND_bytes(id, sizeof(id)) != 1
        || RAND_bytes(secret, sizeof(secret)) != 1)
    {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "cannot make a key", NULL);
        return;
    }

    *ngx_hex_dump(id_hex, id, sizeof(id)) = '\0';

    p = ngx_cpymem(nk->key, "tk_", 3);
    p = ngx_cpymem(p, id_hex, 16);
    *p++ = '_';

    src.data = secret;
    src.len = sizeof(secret);
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p[dst.len] = '\0';

    if (dst.len != 43
        || EVP_Digest(p, 43, digest, &dlen, EVP_sha256(), NULL) != 1
        || dlen != 32)
    {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "cannot make a key", NULL);
        return;
    }

    ngx_explicit_memzero(secret, sizeof(secret));

    hash[0] = '\\';
    hash[1] = 'x';
    *ngx_hex_dump(hash + 2, digest, sizeof(digest)) = '\0';

    ctx->data = nk;

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT * FROM tenant_key_create($1, $2, $3, $4::bytea, $5)",
        ngx_http_tenant_api_key_made, 5, tenant.data, id_hex, name.data,
        hash, ctx->actor.data);
}


static void
ngx_http_tenant_api_key_made(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    json_t                         *key;
    ngx_http_tenant_api_new_key_t  *nk = ctx->data;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ngx_http_tenant_api_db_error(ctx, res);
        goto done;
    }

    if (!PQgetisnull(res, 0, 0)) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_tenant",
                                  "no tenant has this name", "name");
        goto done;
    }

    key = ngx_http_tenant_api_json(res, 1);

    if (key == NULL
        || json_object_set_new(key, "key",
                               json_string((char *) nk->key)) != 0)
    {
        json_decref(key);
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "bad registry answer", NULL);
        goto done;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_CREATED,
                              json_pack("{s:o}", "key", key));

done:

    ngx_explicit_memzero(nk->key, sizeof(nk->key));
}


/* GET tenants/{name}/keys: ids and names, never a secret */

void
ngx_http_tenant_api_keys(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t  tenant;

    if (ngx_http_tenant_api_name_arg(ctx, &tenant) != NGX_OK) {
        return;
    }

    (void) ngx_http_tenant_api_query(ctx, "SELECT tenant_keys_json($1)",
                                     ngx_http_tenant_api_keys_done, 1,
                                     tenant.data);
}


static void
ngx_http_tenant_api_keys_done(ngx_http_tenant_api_ctx_t *ctx, PGresult *res)
{
    ngx_http_tenant_api_wrap(ctx, res, "keys", "no_such_tenant",
                             "no tenant has this name", "name");
}


/* DELETE tenants/{name}/keys/{id}: revoked at once (checked per request) */

void
ngx_http_tenant_api_key_revoke(ngx_http_tenant_api_ctx_t *ctx)
{
    ngx_str_t   tenant, id;
    ngx_uint_t  i;

    if (ngx_http_tenant_api_name_arg(ctx, &tenant) != NGX_OK) {
        return;
    }

    if (ngx_http_tenant_api_arg(ctx, 1, &id) != NGX_OK) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory", NULL);
        return;
    }

    for (i = 0; i < id.len; i++) {
        if (!((id.data[i] >= '0' && id.data[i] <= '9')
              || (id.data[i] >= 'a' && id.data[i] <= 'f')))
        {
            break;
        }
    }

    if (id.len != 16 || i < id.len) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_key",
                                  "the tenant has no live key with this id",
                                  "id");
        return;
    }

    (void) ngx_http_tenant_api_query(ctx,
        "SELECT tenant_key_revoke($1, $2, $3)",
        ngx_http_tenant_api_key_revoked, 3, tenant.data, id.data,
        ctx->actor.data);
}


static void
ngx_http_tenant_api_key_revoked(ngx_http_tenant_api_ctx_t *ctx,
    PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ngx_http_tenant_api_db_error(ctx, res);
        return;
    }

    if (PQgetisnull(res, 0, 0)) {
        ngx_http_tenant_api_error(ctx, NGX_HTTP_NOT_FOUND, "no_such_key",
                                  "the tenant has no live key with this id",
                                  "id");
        return;
    }

    ngx_http_tenant_api_reply(ctx, NGX_HTTP_OK,
                              json_pack("{s:s, s:b}", "id",
                                        PQgetvalue(res, 0, 0), "revoked", 1));
}
