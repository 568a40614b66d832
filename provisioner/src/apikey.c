#include "apikey.h"
#include "db.h"
#include "log.h"
#include "secret.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_ID_BYTES      8
#define KEY_SECRET_BYTES  32

/* base64url without padding: the key travels in headers and shell variables */
static void
base64url(char *dst, const unsigned char *src, size_t n)
{
    int  len, i;

    len = EVP_EncodeBlock((unsigned char *) dst, src, (int) n);
    for (i = 0; i < len; i++) {
        if (dst[i] == '+') {
            dst[i] = '-';
        } else if (dst[i] == '/') {
            dst[i] = '_';
        }
    }
    while (len > 0 && dst[len - 1] == '=') {
        len--;
    }
    dst[len] = '\0';
}

static int
create(PGconn *conn, const char *name, const char *tenant)
{
    unsigned char  id[KEY_ID_BYTES], secret[KEY_SECRET_BYTES];
    unsigned char  digest[EVP_MAX_MD_SIZE];
    unsigned int   dlen;
    char           id_hex[2 * KEY_ID_BYTES + 1];
    char           secret_b64[64];
    char           hash_param[2 + 2 * EVP_MAX_MD_SIZE + 1];
    const char    *params[4];
    PGresult      *res;

    if (name == NULL || *name == '\0' || strlen(name) > 100) {
        log_err("apikey create: NAME must be 1..100 characters");
        return 2;
    }

    if (RAND_bytes(id, sizeof(id)) != 1
        || RAND_bytes(secret, sizeof(secret)) != 1)
    {
        log_err("apikey create: RAND_bytes failed");
        return 1;
    }

    hex_encode(id_hex, id, sizeof(id));
    base64url(secret_b64, secret, sizeof(secret));

    if (EVP_Digest(secret_b64, strlen(secret_b64), digest, &dlen,
                   EVP_sha256(), NULL) != 1)
    {
        log_err("apikey create: SHA-256 failed");
        return 1;
    }

    hash_param[0] = '\\';
    hash_param[1] = 'x';
    hex_encode(hash_param + 2, digest, dlen);

    params[0] = id_hex;
    params[1] = name;
    params[2] = hash_param;
    params[3] = tenant;

    /* a tenant's key: none is made for a tenant that does not exist */
    res = db_query(conn, "store api key",
                   "INSERT INTO api_keys (id, name, key_hash, tenant_id)"
                   " SELECT $1, $2, $3::bytea, $4"
                   "  WHERE $4::text IS NULL"
                   "     OR EXISTS (SELECT 1 FROM tenants WHERE id = $4)",
                   4, params);
    if (res == NULL) {
        return 1;
    }
    if (atoi(PQcmdTuples(res)) != 1) {
        PQclear(res);
        log_err("apikey create: --tenant: no tenant named \"%s\"", tenant);
        return 3;
    }
    PQclear(res);

    /* the only time the key is ever shown */
    printf("tk_%s_%s\n", id_hex, secret_b64);
    return 0;
}

static int
list(PGconn *conn)
{
    PGresult *res;
    int       i;

    res = db_query(conn, "list api keys",
                   "SELECT id, name, coalesce(tenant_id, '-'), created_at,"
                   "       coalesce(revoked_at::text, '')"
                   " FROM api_keys ORDER BY created_at", 0, NULL);
    if (res == NULL) {
        return 1;
    }

    printf("%-16s  %-24s  %-30s  %-32s  %s\n", "ID", "NAME", "TENANT",
           "CREATED", "REVOKED");
    for (i = 0; i < PQntuples(res); i++) {
        printf("%-16s  %-24s  %-30s  %-32s  %s\n", PQgetvalue(res, i, 0),
               PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
               PQgetvalue(res, i, 3), PQgetvalue(res, i, 4));
    }

    PQclear(res);
    return 0;
}

static int
revoke(PGconn *conn, const char *id)
{
    const char *params[1] = { id };
    PGresult   *res;
    int         n;

    if (id == NULL) {
        log_err("apikey revoke: ID is required");
        return 2;
    }

    res = db_query(conn, "revoke api key",
                   "UPDATE api_keys SET revoked_at = now()"
                   " WHERE id = $1 AND revoked_at IS NULL", 1, params);
    if (res == NULL) {
        return 1;
    }
    n = atoi(PQcmdTuples(res));
    PQclear(res);

    if (n == 0) {
        log_err("apikey revoke: no active key with id \"%s\"", id);
        return 3;
    }

    printf("revoked %s\n", id);
    return 0;
}

int
apikey_main(PGconn *conn, int argc, char **argv)
{
    if (argc < 1) {
        log_err("usage: provisioner apikey create NAME [--tenant T] | list |"
                " revoke ID");
        return 2;
    }

    if (strcmp(argv[0], "create") == 0) {
        if (argc == 4 && strcmp(argv[2], "--tenant") == 0) {
            return create(conn, argv[1], argv[3]);
        }
        if (argc > 2) {
            log_err("usage: provisioner apikey create NAME [--tenant T]");
            return 2;
        }
        return create(conn, argc > 1 ? argv[1] : NULL, NULL);
    }
    if (strcmp(argv[0], "list") == 0) {
        return list(conn);
    }
    if (strcmp(argv[0], "revoke") == 0) {
        return revoke(conn, argc > 1 ? argv[1] : NULL);
    }

    log_err("apikey: unknown action \"%s\" (create, list, revoke)", argv[0]);
    return 2;
}
