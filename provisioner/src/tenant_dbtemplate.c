#define _GNU_SOURCE

/*
 * A blueprint's template database: its setup (a real application's
 * migrations, many seconds) run once per blueprint version into
 * tpl_<blueprint>_<version>, and each tenant's database made as a copy of
 * it (CREATE DATABASE ... TEMPLATE, a file copy). The version is a digest
 * of what the migrations can depend on: the blueprint, the setup
 * service's source files and the npm runtimes it names, so changing any of
 * them builds a new template once and retires the old one.
 *
 * The template's objects belong to a role of its own, never to the
 * provisioner, and the template database to the provisioner, never to
 * that role: so a copy's objects are handed to the tenant by REASSIGN
 * OWNED, which would otherwise hand over the template database itself.
 * A built template is sealed: its role loses its login, the database takes
 * no connections, and only CREATE DATABASE can read it.
 */

#include "tenant.h"
#include "db.h"
#include "fsutil.h"
#include "log.h"
#include "secret.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the advisory lock class that serialises building a template */
#define TEMPLATE_LOCK  "7340016"

#define TEMPLATE_SOURCE_MAX  (1024 * 1024)

static int
digest_add(EVP_MD_CTX *md, const char *s, size_t n)
{
    /* each part with its length, so no two splits of one text collide */
    unsigned char  lenbuf[8];
    size_t         i;

    for (i = 0; i < 8; i++) {
        lenbuf[i] = (unsigned char) (n >> (8 * i));
    }
    return EVP_DigestUpdate(md, lenbuf, 8) == 1
           && EVP_DigestUpdate(md, s, n) == 1 ? 0 : -1;
}

/* the setup service's source files, as the blueprint ships them */
static int
digest_sources(EVP_MD_CTX *md, const struct tenant *t, char *err, size_t len)
{
    json_t      *setup, *svc, *files, *v;
    const char  *dest, *src;
    char         path[2048], *data;
    size_t       n;
    int          rc;

    setup = json_object_get(t->bp->json, "setup");
    svc = json_object_get(blueprint_services(t->bp),
                          json_string_value(json_object_get(setup,
                                                            "service")));
    files = json_object_get(svc, "files");

    json_object_foreach(files, dest, v) {
        src = json_string_value(v);
        if (src == NULL || strstr(src, "{{") != NULL) {
            continue;   /* a tenant's own choice: in the blueprint's text */
        }
        snprintf(path, sizeof(path), "%s/%s", t->bp->dir, src);
        data = read_file(path, TEMPLATE_SOURCE_MAX, &n);
        if (data == NULL) {
            snprintf(err, len, "blueprint %s: cannot read %.900s for its "
                     "template's version", t->blueprint, path);
            return -1;
        }
        rc = digest_add(md, dest, strlen(dest)) | digest_add(md, data, n);
        free(data);
        if (rc != 0) {
            snprintf(err, len, "cannot digest %s", path);
            return -1;
        }
    }
    return 0;
}

/* tpl_<blueprint>_<12 hex digits of the version> */
static int
template_name(const struct tenant *t, char *out, size_t outlen, char *err,
              size_t len)
{
    EVP_MD_CTX     *md;
    unsigned char   sum[EVP_MAX_MD_SIZE];
    unsigned int    n;
    char           *bp, hex[13], mark[300];
    const char     *name;
    json_t         *dir;
    size_t          i;
    int             rc = -1;

    bp = json_dumps(t->bp->json, JSON_SORT_KEYS | JSON_COMPACT);
    md = EVP_MD_CTX_new();
    if (bp == NULL || md == NULL
        || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1
        || digest_add(md, bp, strlen(bp)) != 0)
    {
        snprintf(err, len, "cannot digest blueprint %s", t->blueprint);
        goto done;
    }
    if (digest_sources(md, t, err, len) != 0) {
        goto done;
    }
    /* the runtimes it names: their directories carry their lock's digest */
    json_object_foreach(t->runtimes, name, dir) {
        snprintf(mark, sizeof(mark), "{{runtime:%s}}", name);
        if (strstr(bp, mark) != NULL
            && (digest_add(md, name, strlen(name)) != 0
                || digest_add(md, json_string_value(dir),
                              json_string_length(dir)) != 0))
        {
            snprintf(err, len, "cannot digest runtime %s", name);
            goto done;
        }
    }
    if (EVP_DigestFinal_ex(md, sum, &n) != 1) {
        snprintf(err, len, "cannot digest blueprint %s", t->blueprint);
        goto done;
    }
    for (i = 0; i < 6; i++) {
        snprintf(hex + 2 * i, 3, "%02x", sum[i]);
    }
    snprintf(out, outlen, "tpl_%.40s_%s", t->blueprint, hex);
    for (i = 0; out[i]; i++) {
        if (out[i] == '-') {
            out[i] = '_';
        }
    }
    rc = 0;

done:
    EVP_MD_CTX_free(md);
    free(bp);
    return rc;
}

/* 1 sealed, 0 absent or half built (then dropped), -1 error */
static int
template_state(struct prov *p, const char *name, char *err, size_t len)
{
    const char *params[1] = { name };
    PGresult   *res;
    int         sealed, found;

    res = db_query(p->conn, "look up a template database",
                   "SELECT datistemplate FROM pg_database WHERE datname = $1",
                   1, params);
    if (res == NULL) {
        snprintf(err, len, "registry: cannot look up template %s", name);
        return -1;
    }
    found = PQntuples(res) == 1;
    sealed = found && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);

    if (found && !sealed) {
        /* a build that died: its migrations may have stopped anywhere */
        log_warn("template %s was left half built; building it again", name);
        if (tenant_db_ddl(p->conn, "drop a half-built template",
                          "DROP DATABASE", name, " WITH (FORCE)", err, len)
            != 0)
        {
            return -1;
        }
    }
    return sealed;
}

/* an empty database for the setup to fill, which its role may build in */
static int
template_create(struct prov *p, struct tenant_template *tpl, char *err,
                size_t len)
{
    PGconn  *conn;
    char    *role, sql[200];
    int      rc;

    if (secret_password(tpl->password, sizeof(tpl->password) - 1) != 0) {
        snprintf(err, len, "cannot make the template's password");
        return -1;
    }
    if (tenant_db_role(p, tpl->name, tpl->password, err, len) != 0
        || tenant_db_create(p, tpl->name, NULL, NULL, err, len) != 0)
    {
        return -1;
    }

    role = PQescapeIdentifier(p->conn, tpl->name, strlen(tpl->name));
    if (role == NULL) {
        snprintf(err, len, "cannot quote %s", tpl->name);
        return -1;
    }
    snprintf(sql, sizeof(sql), " TO %s", role);
    rc = tenant_db_ddl(p->conn, "open a template database to its role",
                       "GRANT ALL ON DATABASE", tpl->name, sql, err, len);
    if (rc == 0) {
        conn = db_connect_db(p->conf.db, tpl->name);
        snprintf(sql, sizeof(sql), "GRANT ALL ON SCHEMA public TO %s", role);
        rc = conn == NULL
             || db_exec(conn, "open a template's schema to its role", sql)
                != 0 ? -1 : 0;
        if (rc != 0) {
            snprintf(err, len, "template %s: cannot open its schema to its "
                     "role (see the provisioner log)", tpl->name);
        }
        PQfinish(conn);
    }
    PQfreemem(role);
    return rc;
}

int
tenant_template_open(struct prov *p, struct tenant *t,
                     struct tenant_template *tpl, char *err, size_t len)
{
    const char *params[1];
    int         sealed;

    memset(tpl, 0, sizeof(*tpl));
    if (template_name(t, tpl->name, sizeof(tpl->name), err, len) != 0) {
        return -1;
    }
    params[0] = tpl->name;

    /* a template is built by one provisioner; the others wait for it */
    if (db_run(p->conn, "lock a template database",
               "SELECT pg_advisory_lock(" TEMPLATE_LOCK ", hashtext($1))", 1,
               params, err, len) != 0)
    {
        return -1;
    }
    tpl->locked = 1;

    sealed = template_state(p, tpl->name, err, len);
    if (sealed < 0) {
        return -1;
    }
    if (sealed) {
        return 0;
    }

    log_info("tenant %s: building template database %s for blueprint %s",
             t->id, tpl->name, t->blueprint);
    if (template_create(p, tpl, err, len) != 0) {
        return -1;
    }
    tpl->build = 1;
    return 0;
}

int
tenant_template_as(const struct tenant_template *tpl, const struct tenant *t,
                   struct tenant *as, char *err, size_t len)
{
    *as = *t;
    snprintf(as->db_name, sizeof(as->db_name), "%s", tpl->name);
    tenant_db_url(as->db_url, sizeof(as->db_url), tpl->name, tpl->password,
                  t->db_host, t->db_port);
    /* its own secrets object: the tenant's keeps the tenant's password */
    as->secrets = json_copy(t->secrets);
    if (as->secrets == NULL
        || json_object_set_new(as->secrets, "db_password",
                               json_string(tpl->password)) != 0)
    {
        json_decref(as->secrets);
        as->secrets = NULL;
        snprintf(err, len, "out of memory");
        return -1;
    }
    return 0;
}

void
tenant_template_as_free(struct tenant *as)
{
    json_t *pw = json_object_get(as->secrets, "db_password");

    if (json_is_string(pw)) {
        explicit_bzero((char *) json_string_value(pw), json_string_length(pw));
    }
    explicit_bzero(as->db_url, sizeof(as->db_url));
    json_decref(as->secrets);
    as->secrets = NULL;
}

/* the older versions of the blueprint's template: no copy is made of them */
static void
retire_older(struct prov *p, const struct tenant_template *tpl)
{
    char        prefix[80], scratch[256];
    const char *params[2];
    PGresult   *res;
    char       *cut;
    int         i;

    snprintf(prefix, sizeof(prefix), "%s", tpl->name);
    cut = strrchr(prefix, '_');
    if (cut == NULL) {
        return;
    }
    cut[1] = '\0';
    params[0] = prefix;
    params[1] = tpl->name;

    res = db_query(p->conn, "list older template databases",
                   "SELECT datname FROM pg_database"
                   " WHERE left(datname, length($1)) = $1"
                   "   AND substr(datname, length($1) + 1) ~ '^[0-9a-f]{12}$'"
                   "   AND datname <> $2", 2, params);
    for (i = 0; res != NULL && i < PQntuples(res); i++) {
        const char *old = PQgetvalue(res, i, 0);

        if (tenant_db_ddl(p->conn, "unseal an older template",
                          "ALTER DATABASE", old, " IS_TEMPLATE false",
                          scratch, sizeof(scratch)) != 0
            || tenant_db_ddl(p->conn, "drop an older template",
                             "DROP DATABASE IF EXISTS", old, " WITH (FORCE)",
                             scratch, sizeof(scratch)) != 0
            || tenant_db_ddl(p->conn, "drop an older template's role",
                             "DROP ROLE IF EXISTS", old, NULL, scratch,
                             sizeof(scratch)) != 0)
        {
            log_warn("older template %s not retired: %s", old, scratch);
            continue;
        }
        log_info("older template %s retired", old);
    }
    PQclear(res);
}

int
tenant_template_seal(struct prov *p, struct tenant_template *tpl, char *err,
                     size_t len)
{
    explicit_bzero(tpl->password, sizeof(tpl->password));
    if (tenant_db_role(p, tpl->name, NULL, err, len) != 0
        || tenant_db_ddl(p->conn, "seal a template database",
                         "ALTER DATABASE", tpl->name,
                         " IS_TEMPLATE true ALLOW_CONNECTIONS false", err,
                         len) != 0)
    {
        return -1;
    }
    log_info("template database %s built", tpl->name);
    retire_older(p, tpl);
    return 0;
}

void
tenant_template_close(struct prov *p, struct tenant_template *tpl)
{
    const char *params[1] = { tpl->name };
    char        scratch[256];

    explicit_bzero(tpl->password, sizeof(tpl->password));
    if (tpl->locked) {
        /* a failed unlock ends with the connection */
        (void) db_run(p->conn, "unlock a template database",
                      "SELECT pg_advisory_unlock(" TEMPLATE_LOCK
                      ", hashtext($1))", 1, params, scratch,
                      sizeof(scratch));
        tpl->locked = 0;
    }
}

/*
 * The tenant's database as a copy of the template, its objects handed to
 * the tenant's role. Run again on a copy already made (a resumed create),
 * it finds nothing left to hand over.
 */
int
tenant_template_copy(struct prov *p, struct tenant *t,
                     const struct tenant_template *tpl, char *err, size_t len)
{
    PGconn      *conn;
    PGresult    *res;
    char        *owner, *from, sql[300];
    int          rc, i;

    if (tenant_db_create(p, t->db_name, t->db_name, tpl->name, err, len)
        != 0)
    {
        return -1;
    }
    owner = PQescapeIdentifier(p->conn, t->db_name, strlen(t->db_name));
    if (owner == NULL) {
        snprintf(err, len, "cannot quote %s", t->db_name);
        return -1;
    }

    conn = db_connect_db(p->conf.db, t->db_name);
    if (conn == NULL) {
        PQfreemem(owner);
        snprintf(err, len, "cannot connect to database %s (see the "
                 "provisioner log)", t->db_name);
        return -1;
    }

    /* whichever template it came from: a resumed create may outlive one */
    res = db_query(conn, "list a copy's template roles",
                   "SELECT DISTINCT r.rolname FROM pg_shdepend d"
                   "  JOIN pg_roles r ON r.oid = d.refobjid"
                   " WHERE d.dbid = (SELECT oid FROM pg_database"
                   "                  WHERE datname = current_database())"
                   "   AND r.rolname ~ '^tpl_'", 0, NULL);
    rc = res == NULL ? -1 : 0;
    for (i = 0; rc == 0 && i < PQntuples(res); i++) {
        from = PQescapeIdentifier(conn, PQgetvalue(res, i, 0),
                                  strlen(PQgetvalue(res, i, 0)));
        if (from == NULL) {
            rc = -1;
            break;
        }
        snprintf(sql, sizeof(sql), "REASSIGN OWNED BY %s TO %s", from, owner);
        rc = db_exec(conn, "hand a copy's objects to its tenant", sql);
        if (rc == 0) {
            snprintf(sql, sizeof(sql), "REVOKE ALL ON SCHEMA public FROM %s",
                     from);
            rc = db_exec(conn, "close a copy's schema to its template", sql);
        }
        PQfreemem(from);
    }
    if (rc != 0) {
        snprintf(err, len, "database %s: cannot hand its objects to %s (see "
                 "the provisioner log)", t->db_name, t->db_name);
    }
    PQclear(res);
    PQfinish(conn);
    PQfreemem(owner);
    return rc;
}
