#define _GNU_SOURCE

/*
 * A tenant's secrets: made once (random), kept encrypted in the registry
 * under the platform's key, decrypted only into the provisioner's memory.
 */

#include "tenant.h"
#include "db.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the largest secret the registry may hold, its tag included */
#define SECRET_MAX  512

/*
 * Decrypts row i of res, whose columns from col on are the hex nonce and
 * ciphertext; tenant NULL for an unbound row.  The plaintext's length, or
 * -1 (plain is then wiped).
 */
static long
decrypt_row(struct prov *p, PGresult *res, int i, int col,
            const char *tenant, const char *name, char *plain)
{
    unsigned char  nonce[SECRET_NONCE_BYTES], ct[SECRET_MAX];
    size_t         clen;

    clen = (size_t) PQgetlength(res, i, col + 1) / 2;
    if (clen > sizeof(ct) || clen < SECRET_TAG_BYTES
        || tenant_hex_decode(nonce, PQgetvalue(res, i, col), SECRET_NONCE_BYTES)
        || tenant_hex_decode(ct, PQgetvalue(res, i, col + 1), clen)
        || secret_decrypt(p->key, tenant, name, nonce, ct, clen, plain) != 0)
    {
        return -1;
    }
    return (long) (clen - SECRET_TAG_BYTES);
}

int
tenant_load_secrets(struct prov *p, struct tenant *t, char *err, size_t len)
{
    const char     *params[1] = { t->id };
    PGresult       *res;
    char            plain[SECRET_MAX];
    int             i, n;

    res = db_query(p->conn, "read tenant secrets",
                   "SELECT name, encode(nonce, 'hex'), encode(ciphertext,"
                   " 'hex'), bound FROM tenant_secrets WHERE tenant_id = $1",
                   1, params);
    if (res == NULL) {
        snprintf(err, len, "registry: cannot read secrets of %s", t->id);
        return -1;
    }

    n = PQntuples(res);
    for (i = 0; i < n; i++) {
        if (decrypt_row(p, res, i, 1,
                        PQgetvalue(res, i, 3)[0] == 't' ? t->id : NULL,
                        PQgetvalue(res, i, 0), plain) < 0)
        {
            snprintf(err, len, "cannot decrypt secret %s of %s (is "
                     "secret_key the one it was stored with?)",
                     PQgetvalue(res, i, 0), t->id);
            PQclear(res);
            return -1;
        }
        json_object_set_new(t->secrets, PQgetvalue(res, i, 0),
                            json_string(plain));
        explicit_bzero(plain, sizeof(plain));
    }
    PQclear(res);
    return 0;
}

struct need {
    struct prov    *p;
    struct tenant  *t;
    char           *err;
    size_t          len;
};

static int
need_secret(const char *name, void *data)
{
    struct need    *nd = data;
    char            pw[33], nonce_hex[2 * SECRET_NONCE_BYTES + 3];
    char            ct_hex[2 * (32 + SECRET_TAG_BYTES) + 3];
    unsigned char   nonce[SECRET_NONCE_BYTES], ct[32 + SECRET_TAG_BYTES];
    const char     *params[4];
    PGresult       *res;

    if (json_object_get(nd->t->secrets, name)) {
        return 0;
    }

    if (secret_password(pw, 32) != 0
        || secret_encrypt(nd->p->key, nd->t->id, name, pw, 32, nonce, ct)
           != 0)
    {
        explicit_bzero(pw, sizeof(pw));
        snprintf(nd->err, nd->len, "cannot make secret %s", name);
        return -1;
    }
    explicit_bzero(pw, sizeof(pw));

    bytea_hex(nonce_hex, nonce, SECRET_NONCE_BYTES);
    bytea_hex(ct_hex, ct, sizeof(ct));

    params[0] = nd->t->id;
    params[1] = name;
    params[2] = nonce_hex;
    params[3] = ct_hex;

    /* a resumed job may race its earlier self: the first value wins */
    res = db_query(nd->p->conn, "store tenant secret",
                   "INSERT INTO tenant_secrets (tenant_id, name, nonce,"
                   " ciphertext, bound)"
                   " VALUES ($1, $2, $3::bytea, $4::bytea, true)"
                   " ON CONFLICT DO NOTHING", 4, params);
    if (res == NULL) {
        snprintf(nd->err, nd->len, "registry: cannot store secret %s", name);
        return -1;
    }
    PQclear(res);

    json_object_set_new(nd->t->secrets, name, json_null());
    return 0;
}

static int
scan_json(json_t *v, struct need *nd)
{
    const char *k;
    json_t     *e;
    size_t      i;

    if (json_is_string(v)) {
        return template_secrets(json_string_value(v), need_secret, nd);
    }
    if (json_is_object(v)) {
        json_object_foreach(v, k, e) {
            if (scan_json(e, nd) != 0) {
                return -1;
            }
        }
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            if (scan_json(e, nd) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

/*
 * Makes every secret the blueprint refers to (and the database password),
 * stored encrypted, then loads them all in clear for rendering.
 */
int
tenant_ensure_secrets(struct prov *p, struct tenant *t, char *err, size_t len)
{
    struct need nd = { p, t, err, len };

    if (!p->have_key) {
        snprintf(err, len, "secret_key is not configured");
        return -1;
    }

    if (tenant_load_secrets(p, t, err, len) != 0) {
        return -1;
    }

    if ((blueprint_database(t->bp) && need_secret("db_password", &nd) != 0)
        || scan_json(t->bp->json, &nd) != 0)
    {
        return -1;
    }

    json_object_clear(t->secrets);
    return tenant_load_secrets(p, t, err, len);
}

/* one secret by name, made if it is not there yet (a webhook's key) */
int
tenant_ensure_named_secret(struct prov *p, struct tenant *t,
                           const char *name, char *err, size_t len)
{
    struct need nd = { p, t, err, len };

    if (!p->have_key) {
        snprintf(err, len, "secret_key is not configured");
        return -1;
    }
    if (tenant_load_secrets(p, t, err, len) != 0
        || need_secret(name, &nd) != 0)
    {
        return -1;
    }
    json_object_clear(t->secrets);
    return tenant_load_secrets(p, t, err, len);
}

/*
 * Rows written before secrets were bound to their tenant and name
 * (migration 007) are re-encrypted bound, once, when the daemon starts.
 * Returns how many were, or -1.
 */
int
tenant_secrets_bind(struct prov *p)
{
    PGresult       *res, *up;
    unsigned char   nonce[SECRET_NONCE_BYTES], ct[SECRET_MAX];
    char            plain[SECRET_MAX], nonce_hex[2 * SECRET_NONCE_BYTES + 3];
    char            ct_hex[2 * sizeof(ct) + 3];
    const char     *params[4];
    int             i, n, done = 0;
    long            plen;

    res = db_query(p->conn, "read unbound secrets",
                   "SELECT tenant_id, name, encode(nonce, 'hex'),"
                   "       encode(ciphertext, 'hex')"
                   "  FROM tenant_secrets WHERE NOT bound", 0, NULL);
    if (res == NULL) {
        return -1;
    }

    n = PQntuples(res);
    for (i = 0; i < n; i++) {
        plen = decrypt_row(p, res, i, 2, NULL, NULL, plain);
        if (plen < 0) {
            log_err("secret %s of %s cannot be decrypted to bind it (is "
                    "secret_key the one it was stored with?)",
                    PQgetvalue(res, i, 1), PQgetvalue(res, i, 0));
            continue;
        }

        if (secret_encrypt(p->key, PQgetvalue(res, i, 0),
                           PQgetvalue(res, i, 1), plain, (size_t) plen, nonce,
                           ct)
            != 0)
        {
            explicit_bzero(plain, sizeof(plain));
            continue;
        }
        explicit_bzero(plain, sizeof(plain));

        bytea_hex(nonce_hex, nonce, SECRET_NONCE_BYTES);
        bytea_hex(ct_hex, ct, (size_t) plen + SECRET_TAG_BYTES);

        params[0] = PQgetvalue(res, i, 0);
        params[1] = PQgetvalue(res, i, 1);
        params[2] = nonce_hex;
        params[3] = ct_hex;

        up = db_query(p->conn, "bind a secret",
                      "UPDATE tenant_secrets SET nonce = $3::bytea,"
                      "       ciphertext = $4::bytea, bound = true"
                      " WHERE tenant_id = $1 AND name = $2 AND NOT bound",
                      4, params);
        if (up == NULL) {
            PQclear(res);
            return -1;
        }
        done += atoi(PQcmdTuples(up));
        PQclear(up);
    }
    PQclear(res);

    if (done > 0) {
        log_info("bound %d secret(s) to their tenant and name", done);
    }
    return done;
}
