#define _GNU_SOURCE

/*
 * A tenant's own PostgreSQL database and role, made with its password
 * secret and dropped with it.
 */

#include "tenant.h"
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* database and role name of a tenant: an identifier without hyphens */
void
tenant_db_name(const char *id, char *out, size_t len)
{
    size_t i;

    snprintf(out, len, "tenant_%s", id);
    for (i = 0; out[i]; i++) {
        if (out[i] == '-') {
            out[i] = '_';
        }
    }
}


int
tenant_db_ddl(PGconn *conn, const char *what, const char *verb,
              const char *ident, const char *tail, char *err, size_t len)
{
    char *q, *sql;
    int   rc;

    /*
     * DDL takes no parameters: the identifier is escaped by libpq and comes
     * from a tenant or blueprint name already held to [a-z0-9_-].
     */
    q = PQescapeIdentifier(conn, ident, strlen(ident));
    if (q == NULL) {
        snprintf(err, len, "cannot quote %s", ident);
        return -1;
    }
    if (asprintf(&sql, "%s %s%s", verb, q, tail ? tail : "") < 0) {
        PQfreemem(q);
        snprintf(err, len, "out of memory");
        return -1;
    }
    PQfreemem(q);

    rc = db_exec(conn, what, sql);
    free(sql);
    if (rc != 0) {
        snprintf(err, len, "registry: %s %s failed (see the provisioner log)",
                 what, ident);
    }
    return rc;
}

int
tenant_db_exists(PGconn *conn, const char *sql, const char *name)
{
    const char *params[1] = { name };
    PGresult   *res = db_query(conn, "check existence", sql, 1, params);
    int         n;

    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    PQclear(res);
    return n > 0;
}

int
tenant_db_role(struct prov *p, const char *role, const char *pw, char *err,
               size_t len)
{
    char  *verifier, *lit, tail[600];
    int    rc;

    if (pw == NULL) {
        snprintf(tail, sizeof(tail), " NOLOGIN PASSWORD NULL");
    } else {
        /* the server gets a SCRAM verifier, never the password itself */
        verifier = PQencryptPasswordConn(p->conn, pw, role, "scram-sha-256");
        if (verifier == NULL) {
            snprintf(err, len, "cannot hash the database password");
            return -1;
        }
        lit = PQescapeLiteral(p->conn, verifier, strlen(verifier));
        PQfreemem(verifier);
        if (lit == NULL) {
            snprintf(err, len, "cannot quote the password verifier");
            return -1;
        }
        snprintf(tail, sizeof(tail), " LOGIN PASSWORD %s", lit);
        PQfreemem(lit);
    }

    rc = tenant_db_exists(p->conn, "SELECT 1 FROM pg_roles WHERE rolname = $1",
                          role);
    if (rc < 0) {
        snprintf(err, len, "registry: cannot look up role %s", role);
        return -1;
    }
    if (tenant_db_ddl(p->conn, rc ? "update role" : "create role",
                      rc ? "ALTER ROLE" : "CREATE ROLE", role, tail, err, len)
        != 0)
    {
        return -1;
    }

    /* owning a database, and handing objects on, need membership */
    return tenant_db_ddl(p->conn, "join role", "GRANT", role,
                         " TO CURRENT_USER", err, len);
}

int
tenant_db_templated(const struct tenant *t)
{
    json_t *setup = json_object_get(t->bp->json, "setup");

    return blueprint_database(t->bp)
           && json_is_true(json_object_get(setup, "template"));
}

/* a role's URL of its own database (named as the role) on host:port */
void
tenant_db_url(char *out, size_t len, const char *role, const char *pw,
              const char *host, const char *port)
{
    if (host[0] == '/') {
        snprintf(out, len, "postgresql://%s:%s@/%s?host=%s&port=%s", role,
                 pw, role, host, port);
    } else {
        snprintf(out, len, "postgresql://%s:%s@%s:%s/%s", role, pw, host,
                 port, role);
    }
}

/* services reach their database where the provisioner reaches the registry */
void
tenant_fill_db_url(struct prov *p, struct tenant *t)
{
    const char *pw, *host, *port;

    pw = json_string_value(json_object_get(t->secrets, "db_password"));
    if (!blueprint_database(t->bp) || pw == NULL) {
        return;
    }

    host = PQhost(p->conn);
    port = PQport(p->conn);
    snprintf(t->db_host, sizeof(t->db_host), "%s",
             host && *host ? host : "127.0.0.1");
    snprintf(t->db_port, sizeof(t->db_port), "%s",
             port && *port ? port : "5432");
    tenant_db_url(t->db_url, sizeof(t->db_url), t->db_name, pw, t->db_host,
                  t->db_port);
}


int
tenant_ensure_database(struct prov *p, struct tenant *t, char *err,
                       size_t len)
{
    const char *pw;

    if (!blueprint_database(t->bp)) {
        return 0;
    }

    pw = json_string_value(json_object_get(t->secrets, "db_password"));
    if (pw == NULL) {
        snprintf(err, len, "database password missing for %s", t->id);
        return -1;
    }
    if (tenant_db_role(p, t->db_name, pw, err, len) != 0) {
        return -1;
    }

    tenant_fill_db_url(p, t);

    /* a copy of the blueprint's template is made by the setup step */
    if (tenant_db_templated(t)) {
        return 0;
    }

    return tenant_db_create(p, t->db_name, t->db_name, NULL, err, len);
}

int
tenant_db_create(struct prov *p, const char *db, const char *owner,
                 const char *template, char *err, size_t len)
{
    char  *o, *f, tail[300];
    int    rc;

    rc = tenant_db_exists(p->conn,
                          "SELECT 1 FROM pg_database WHERE datname = $1", db);
    if (rc < 0) {
        snprintf(err, len, "registry: cannot look up database %s", db);
        return -1;
    }
    if (rc > 0) {
        return 0;
    }

    o = owner ? PQescapeIdentifier(p->conn, owner, strlen(owner)) : NULL;
    f = template ? PQescapeIdentifier(p->conn, template, strlen(template))
                 : NULL;
    if ((owner && o == NULL) || (template && f == NULL)) {
        PQfreemem(o);
        PQfreemem(f);
        snprintf(err, len, "cannot quote the owner or template of %s", db);
        return -1;
    }
    snprintf(tail, sizeof(tail), "%s%s%s%s", f ? " TEMPLATE " : "",
             f ? f : "", o ? " OWNER " : "", o ? o : "");
    PQfreemem(o);
    PQfreemem(f);

    if (tenant_db_ddl(p->conn, template ? "copy a database"
                                        : "create a database",
                      "CREATE DATABASE", db, tail, err, len) != 0
        || tenant_db_ddl(p->conn, "close a database",
                         "REVOKE ALL ON DATABASE", db, " FROM PUBLIC", err,
                         len) != 0)
    {
        return -1;
    }
    return 0;
}

int
tenant_drop_database(struct prov *p, const char *id, char *err, size_t len)
{
    char  name[80];

    tenant_db_name(id, name, sizeof(name));

    if (tenant_db_ddl(p->conn, "drop tenant database",
                      "DROP DATABASE IF EXISTS", name, " WITH (FORCE)", err,
                      len) != 0
        || tenant_db_ddl(p->conn, "drop tenant role", "DROP ROLE IF EXISTS",
                         name, NULL, err, len) != 0)
    {
        return -1;
    }
    return 0;
}

/* --- ports ---------------------------------------------------------------- */
