#define _GNU_SOURCE

#include "backup_digest.h"
#include "db.h"
#include "secret.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
backup_session(PGconn *conn, const char *role, char *err, size_t len)
{
    char  *q, *sql;
    int    rc;

    q = PQescapeIdentifier(conn, role, strlen(role));
    if (q == NULL || asprintf(&sql, "SET ROLE %s", q) < 0) {
        PQfreemem(q);
        snprintf(err, len, "out of memory");
        return -1;
    }
    PQfreemem(q);

    /* row_security off: a policy of the tenant's is an error, never a
     * silently shorter table */
    rc = db_exec(conn, "take the tenant's role", sql);
    free(sql);
    if (rc != 0
        || db_exec(conn, "fix the text format",
                   "SET row_security = off; SET TimeZone = 'UTC';"
                   " SET DateStyle = 'ISO, YMD'; SET IntervalStyle ="
                   " 'postgres'; SET extra_float_digits = 3;"
                   " SET bytea_output = 'hex'; SET lc_monetary = 'C'") != 0)
    {
        snprintf(err, len, "database: cannot set up a session as %s (see "
                 "the provisioner log)", role);
        return -1;
    }
    return 0;
}

static int
one_table(PGconn *conn, const char *schema, const char *name, json_t *out,
          char *err, size_t len)
{
    char      *qs, *qn, *sql, key[300];
    PGresult  *res;
    int        rc = -1;

    qs = PQescapeIdentifier(conn, schema, strlen(schema));
    qn = PQescapeIdentifier(conn, name, strlen(name));
    if (qs == NULL || qn == NULL
        || asprintf(&sql, "SELECT count(*), coalesce(sum(('x' || left(md5("
                    "t::text), 15))::bit(60)::bigint), 0)::text"
                    " FROM ONLY %s.%s t", qs, qn) < 0)
    {
        PQfreemem(qs);
        PQfreemem(qn);
        snprintf(err, len, "out of memory");
        return -1;
    }
    PQfreemem(qs);
    PQfreemem(qn);

    res = db_query(conn, "checksum a table", sql, 0, NULL);
    free(sql);
    snprintf(key, sizeof(key), "%s.%s", schema, name);
    if (res == NULL) {
        snprintf(err, len, "database: cannot read table %.250s (see the "
                 "provisioner log)", key);
        return -1;
    }
    if (PQntuples(res) == 1) {
        rc = json_object_set_new(out, key, json_pack("{s:I, s:s}", "rows",
                                 (json_int_t) strtoll(PQgetvalue(res, 0, 0),
                                                      NULL, 10),
                                 "sum", PQgetvalue(res, 0, 1)));
    }
    PQclear(res);
    if (rc != 0) {
        snprintf(err, len, "cannot record table %.250s", key);
    }
    return rc;
}

int
backup_tables(PGconn *conn, json_t **out, char *err, size_t len)
{
    PGresult  *res;
    int        i, rc = 0;

    *out = json_object();
    res = db_query(conn, "list the tables",
                   "SELECT n.nspname, c.relname FROM pg_class c"
                   "  JOIN pg_namespace n ON n.oid = c.relnamespace"
                   " WHERE c.relkind = 'r'"
                   "   AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                   "   AND n.nspname !~ '^pg_'"
                   " ORDER BY 1, 2", 0, NULL);
    if (res == NULL || *out == NULL) {
        PQclear(res);
        json_decref(*out);
        *out = NULL;
        snprintf(err, len, "database: cannot list the tables (see the "
                 "provisioner log)");
        return -1;
    }
    for (i = 0; i < PQntuples(res) && rc == 0; i++) {
        rc = one_table(conn, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                       *out, err, len);
    }
    PQclear(res);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

void
backup_tables_diff(json_t *want, json_t *got, char *out, size_t len)
{
    const char  *key;
    json_t      *w, *g;

    out[0] = '\0';
    json_object_foreach(want, key, w) {
        g = json_object_get(got, key);
        if (g == NULL) {
            snprintf(out, len, "table %.200s is missing", key);
            return;
        }
        if (!json_equal(json_object_get(w, "rows"),
                        json_object_get(g, "rows")))
        {
            snprintf(out, len, "table %.200s has %lld rows, the source had "
                     "%lld", key,
                     (long long) json_integer_value(json_object_get(g, "rows")),
                     (long long) json_integer_value(json_object_get(w,
                                                                    "rows")));
            return;
        }
        if (!json_equal(json_object_get(w, "sum"), json_object_get(g, "sum")))
        {
            snprintf(out, len, "table %.200s: its rows differ from the "
                     "source's (checksum)", key);
            return;
        }
    }
    json_object_foreach(got, key, g) {
        if (json_object_get(want, key) == NULL) {
            snprintf(out, len, "table %.200s was not in the source", key);
            return;
        }
    }
}

int
backup_file_sha256(const char *path, char hex[65], long long *bytes,
                   char *err, size_t len)
{
    unsigned char  buf[65536], md[EVP_MAX_MD_SIZE];
    unsigned int   mdlen = 0;
    EVP_MD_CTX    *ctx;
    FILE          *f;
    size_t         n;
    int            rc = -1;

    *bytes = 0;
    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, len, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1) {
        rc = 0;
        while (rc == 0 && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
            *bytes += (long long) n;
            rc = EVP_DigestUpdate(ctx, buf, n) == 1 ? 0 : -1;
        }
        if (rc == 0 && (ferror(f)
                        || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1
                        || mdlen != 32))
        {
            rc = -1;
        }
    }
    EVP_MD_CTX_free(ctx);
    fclose(f);
    if (rc != 0) {
        snprintf(err, len, "cannot checksum %s", path);
        return -1;
    }
    hex_encode(hex, md, 32);
    return 0;
}
