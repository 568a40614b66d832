#define _POSIX_C_SOURCE 200809L

#include "cli_jwt.h"
#include "cli.h"
#include "actor.h"
#include "db.h"
#include "jwks.h"
#include "tenant_jwk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
usage_error(const char *msg, const char *what)
{
    fprintf(stderr, "provisioner jwt: %s%s%s\n", what ? what : "",
            what ? ": " : "", msg);
    return EXIT_USAGE;
}

static int
keys(struct prov *p)
{
    PGresult  *res;
    int        i;

    res = db_query(p->conn, "list the token keys",
                   "SELECT k.kid, k.alg, k.source, coalesce(s.url, '-'),"
                   "       to_char(k.created_at, 'YYYY-MM-DD HH24:MI')"
                   "  FROM jwt_keys k LEFT JOIN jwks_sources s"
                   "    ON s.id = k.jwks_id ORDER BY k.kid", 0, NULL);
    if (res == NULL) {
        return EXIT_ERROR;
    }
    printf("%-40s  %-5s  %-6s  %-16s  %s\n", "KID", "ALG", "SOURCE",
           "CREATED", "JWKS");
    for (i = 0; i < PQntuples(res); i++) {
        printf("%-40s  %-5s  %-6s  %-16s  %s\n", PQgetvalue(res, i, 0),
               PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
               PQgetvalue(res, i, 4), PQgetvalue(res, i, 3));
    }
    PQclear(res);
    return EXIT_OK;
}

static int
sources(struct prov *p)
{
    PGresult  *res;
    int        i;

    res = db_query(p->conn, "list the JWKS sources",
                   "SELECT url, refresh,"
                   "       coalesce(to_char(fetched_at, 'YYYY-MM-DD HH24:MI:SS'),"
                   "                '-'),"
                   "       (SELECT count(*) FROM jwt_keys k"
                   "         WHERE k.jwks_id = s.id), coalesce(error, '')"
                   "  FROM jwks_sources s ORDER BY url", 0, NULL);
    if (res == NULL) {
        return EXIT_ERROR;
    }
    printf("%-50s  %-7s  %-19s  %-4s  %s\n", "URL", "REFRESH", "FETCHED",
           "KEYS", "ERROR");
    for (i = 0; i < PQntuples(res); i++) {
        printf("%-50s  %-7s  %-19s  %-4s  %s\n", PQgetvalue(res, i, 0),
               PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
               PQgetvalue(res, i, 3), PQgetvalue(res, i, 4));
    }
    PQclear(res);
    return EXIT_OK;
}

static int
upload(struct prov *p, const char *kid, const char *file)
{
    FILE            *f;
    char             pem[TENANT_JWK_PEM_MAX + 1], err[256],
                     hex[2 * TENANT_JWK_DER_MAX + 3];
    size_t           n, i;
    tenant_jwk_t     k;
    const char      *params[4];
    PGresult        *res;
    int              rc;

    if (!tenant_jwk_kid_valid(kid, strlen(kid))) {
        return usage_error("1 to 128 printable characters, no space", "KID");
    }
    f = fopen(file, "r");
    if (f == NULL) {
        fprintf(stderr, "provisioner jwt upload: FILE %s: %s\n", file,
                strerror(errno));
        return EXIT_USAGE;
    }
    n = fread(pem, 1, sizeof(pem) - 1, f);
    rc = ferror(f);
    fclose(f);
    if (rc || n == sizeof(pem) - 1) {
        fprintf(stderr, "provisioner jwt upload: FILE %s: %s\n", file,
                rc ? "cannot be read" : "larger than a public key");
        return EXIT_USAGE;
    }
    pem[n] = '\0';
    if (tenant_jwk_from_pem(pem, n, &k, err, sizeof(err)) != 0) {
        fprintf(stderr, "provisioner jwt upload: FILE %s: %s\n", file, err);
        return EXIT_USAGE;
    }
    strcpy(hex, "\\x");
    for (i = 0; i < k.der_len; i++) {
        sprintf(hex + 2 + 2 * i, "%02x", k.der[i]);
    }
    params[0] = kid;
    params[1] = k.alg;
    params[2] = hex;
    params[3] = cli_actor();
    res = db_query(p->conn, "store the token key",
                   "SELECT jwt_key_upload($1, $2, $3::bytea, $4)", 4, params);
    if (res == NULL) {
        return EXIT_ERROR;
    }
    rc = EXIT_OK;
    if (!PQgetisnull(res, 0, 0)) {
        rc = EXIT_CONFLICT;
        fprintf(stderr, "provisioner jwt upload: KID %s: %s\n", kid,
                strcmp(PQgetvalue(res, 0, 0), "exists") == 0
                ? "is taken (remove it first to replace it)"
                : "the registry holds 64 keys, the most the edge takes");
    } else {
        printf("%s %s\n", kid, k.alg);
    }
    PQclear(res);
    return rc;
}

static int
add_jwks(struct prov *p, const char *url, const char *refresh)
{
    const char  *params[3] = { url, refresh, cli_actor() };
    char         id[32], err[512];
    PGresult    *res;
    json_t      *src;
    int          n;

    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        return usage_error("an http:// or https:// URL", "URL");
    }
    /* kept only if the first fetch works: a wrong URL leaves nothing, not
     * even its audit row */
    if (db_begin(p->conn) != 0) {
        return EXIT_ERROR;
    }
    res = db_query(p->conn, "add the JWKS source",
                   "SELECT jwks_source_add($1, $2::int, $3)", 3, params);
    if (res == NULL) {
        db_rollback(p->conn);
        return EXIT_ERROR;
    }
    if (PQgetisnull(res, 0, 0)) {
        PQclear(res);
        db_rollback(p->conn);
        fprintf(stderr, "provisioner jwt jwks: URL %s: is a source already\n",
                url);
        return EXIT_CONFLICT;
    }
    src = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    snprintf(id, sizeof(id), "%lld",
             (long long) json_integer_value(json_object_get(src, "id")));
    json_decref(src);

    n = jwks_fetch(p, id, url, err, sizeof(err));
    if (n < 0) {
        db_rollback(p->conn);
        fprintf(stderr, "provisioner jwt jwks: URL %s\n", err);
        return EXIT_ERROR;
    }
    if (db_commit(p->conn) != 0) {
        return EXIT_ERROR;
    }
    printf("%s: %d keys\n", url, n);
    return EXIT_OK;
}

static int
remove_key(struct prov *p, const char *what)
{
    const char  *params[2] = { what, cli_actor() };
    PGresult    *res;
    int          rc;

    res = db_query(p->conn, "remove the token key",
                   "SELECT jwt_key_remove($1, $2)", 2, params);
    if (res == NULL) {
        return EXIT_ERROR;
    }
    rc = PQgetisnull(res, 0, 0) ? EXIT_NOT_FOUND : EXIT_OK;
    if (rc == EXIT_OK) {
        printf("removed %s\n", PQgetvalue(res, 0, 0));
    } else {
        fprintf(stderr, "provisioner jwt remove: %s: no uploaded key or "
                "JWKS source of that name\n", what);
    }
    PQclear(res);
    return rc;
}

int
cli_jwt(struct prov *p, int argc, char **argv)
{
    const char  *verb = argc > 0 ? argv[0] : "keys";
    char        *end;
    long         s;

    if (strcmp(verb, "keys") == 0 && argc <= 1) {
        return keys(p);
    }
    if (strcmp(verb, "sources") == 0 && argc == 1) {
        return sources(p);
    }
    if (strcmp(verb, "upload") == 0) {
        if (argc != 3) {
            return usage_error("upload KID FILE (a PEM public key or "
                               "certificate)", NULL);
        }
        return upload(p, argv[1], argv[2]);
    }
    if (strcmp(verb, "jwks") == 0) {
        if (argc == 2) {
            return add_jwks(p, argv[1], NULL);
        }
        if (argc == 4 && strcmp(argv[2], "--refresh") == 0) {
            errno = 0;
            s = strtol(argv[3], &end, 10);
            if (errno || *end || s < 1 || s > 86400) {
                return usage_error("seconds, 1 to 86400", "--refresh");
            }
            return add_jwks(p, argv[1], argv[3]);
        }
        return usage_error("jwks URL [--refresh SECONDS]", NULL);
    }
    if (strcmp(verb, "remove") == 0 && argc == 2) {
        return remove_key(p, argv[1]);
    }
    return usage_error("keys | sources | upload KID FILE | jwks URL "
                       "[--refresh SECONDS] | remove KID|URL", verb);
}
