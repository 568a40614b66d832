#define _GNU_SOURCE

#include "tenant.h"
#include "db.h"
#include "fsutil.h"
#include "health.h"
#include "log.h"
#include "tasks.h"
#include "template.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* database and role name of a tenant: an identifier without hyphens */
static void
db_name_of(const char *id, char *out, size_t len)
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
tenant_load(struct prov *p, const char *id, struct tenant *t, char *err,
            size_t len)
{
    const char *params[1] = { id };
    PGresult   *res;

    memset(t, 0, sizeof(*t));

    res = db_query(p->conn, "read tenant",
                   "SELECT id, blueprint, theme, mode, status, display_name"
                   "  FROM tenants WHERE id = $1", 1, params);
    if (res == NULL) {
        snprintf(err, len, "registry: cannot read tenant %s", id);
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        return 1;
    }

    snprintf(t->id, sizeof(t->id), "%s", PQgetvalue(res, 0, 0));
    snprintf(t->blueprint, sizeof(t->blueprint), "%s", PQgetvalue(res, 0, 1));
    snprintf(t->theme, sizeof(t->theme), "%s", PQgetvalue(res, 0, 2));
    snprintf(t->mode, sizeof(t->mode), "%s", PQgetvalue(res, 0, 3));
    snprintf(t->status, sizeof(t->status), "%s", PQgetvalue(res, 0, 4));
    snprintf(t->display_name, sizeof(t->display_name), "%s",
             PQgetvalue(res, 0, 5));
    PQclear(res);

    snprintf(t->slot, sizeof(t->slot), "%s/%s", p->conf.state_dir, t->id);
    snprintf(t->dir, sizeof(t->dir), "%.1000s/home", t->slot);
    snprintf(t->domain, sizeof(t->domain), "%s.%s", t->id,
             p->conf.base_domain);

    db_name_of(t->id, t->db_name, sizeof(t->db_name));

    t->bp = blueprint_find(&p->blueprints, t->blueprint);
    if (t->bp == NULL) {
        snprintf(err, len, "blueprint \"%s\" is not loaded (see the "
                 "provisioner's blueprints directory)", t->blueprint);
        return -1;
    }

    t->ports = json_object();
    t->secrets = json_object();
    if (t->ports == NULL || t->secrets == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    return 0;
}

void
tenant_free(struct tenant *t)
{
    json_decref(t->ports);
    json_decref(t->secrets);
    t->ports = NULL;
    t->secrets = NULL;
}

static int
dedicated(const struct tenant *t)
{
    return strcmp(t->mode, "dedicated") == 0;
}

/* --- secrets -------------------------------------------------------------- */

static int
load_secrets(struct prov *p, struct tenant *t, char *err, size_t len)
{
    const char     *params[1] = { t->id };
    PGresult       *res;
    unsigned char   nonce[SECRET_NONCE_BYTES], ct[512];
    char            plain[512];
    int             i, n;
    size_t          clen;

    res = db_query(p->conn, "read tenant secrets",
                   "SELECT name, encode(nonce, 'hex'), encode(ciphertext,"
                   " 'hex') FROM tenant_secrets WHERE tenant_id = $1", 1,
                   params);
    if (res == NULL) {
        snprintf(err, len, "registry: cannot read secrets of %s", t->id);
        return -1;
    }

    n = PQntuples(res);
    for (i = 0; i < n; i++) {
        clen = (size_t) PQgetlength(res, i, 2) / 2;
        if (clen > sizeof(ct) || clen < SECRET_TAG_BYTES
            || hex_decode(nonce, PQgetvalue(res, i, 1), SECRET_NONCE_BYTES)
            || hex_decode(ct, PQgetvalue(res, i, 2), clen)
            || secret_decrypt(p->key, nonce, ct, clen, plain) != 0)
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
        || secret_encrypt(nd->p->key, pw, 32, nonce, ct) != 0)
    {
        snprintf(nd->err, nd->len, "cannot make secret %s", name);
        return -1;
    }
    explicit_bzero(pw, sizeof(pw));

    nonce_hex[0] = '\\';
    nonce_hex[1] = 'x';
    hex_encode(nonce_hex + 2, nonce, SECRET_NONCE_BYTES);
    ct_hex[0] = '\\';
    ct_hex[1] = 'x';
    hex_encode(ct_hex + 2, ct, sizeof(ct));

    params[0] = nd->t->id;
    params[1] = name;
    params[2] = nonce_hex;
    params[3] = ct_hex;

    /* a resumed job may race its earlier self: the first value wins */
    res = db_query(nd->p->conn, "store tenant secret",
                   "INSERT INTO tenant_secrets (tenant_id, name, nonce,"
                   " ciphertext) VALUES ($1, $2, $3::bytea, $4::bytea)"
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

    if (load_secrets(p, t, err, len) != 0) {
        return -1;
    }

    if ((blueprint_database(t->bp) && need_secret("db_password", &nd) != 0)
        || scan_json(t->bp->json, &nd) != 0)
    {
        return -1;
    }

    json_object_clear(t->secrets);
    return load_secrets(p, t, err, len);
}

/* --- database ------------------------------------------------------------- */

static int
exec_ddl(struct prov *p, const char *what, const char *verb,
         const char *ident, const char *tail, char *err, size_t len)
{
    char *q, *sql;
    int   rc;

    /*
     * DDL takes no parameters: the identifier is escaped by libpq and comes
     * from a tenant name already held to [a-z0-9-].
     */
    q = PQescapeIdentifier(p->conn, ident, strlen(ident));
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

    rc = db_exec(p->conn, what, sql);
    free(sql);
    if (rc != 0) {
        snprintf(err, len, "registry: %s %s failed (see the provisioner log)",
                 what, ident);
    }
    return rc;
}

static int
exists(struct prov *p, const char *sql, const char *name)
{
    const char *params[1] = { name };
    PGresult   *res = db_query(p->conn, "check existence", sql, 1, params);
    int         n;

    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    PQclear(res);
    return n > 0;
}

/* services reach their database where the provisioner reaches the registry */
static void
fill_db_url(struct prov *p, struct tenant *t)
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
    if (host && host[0] == '/') {
        snprintf(t->db_url, sizeof(t->db_url),
                 "postgresql://%s:%s@/%s?host=%s&port=%s", t->db_name, pw,
                 t->db_name, host, port && *port ? port : "5432");
    } else {
        snprintf(t->db_url, sizeof(t->db_url), "postgresql://%s:%s@%s:%s/%s",
                 t->db_name, pw, host && *host ? host : "127.0.0.1",
                 port && *port ? port : "5432", t->db_name);
    }
}


int
tenant_ensure_database(struct prov *p, struct tenant *t, char *err,
                       size_t len)
{
    const char *pw;
    char       *verifier, *lit, tail[600];
    int         rc;

    if (!blueprint_database(t->bp)) {
        return 0;
    }

    pw = json_string_value(json_object_get(t->secrets, "db_password"));
    if (pw == NULL) {
        snprintf(err, len, "database password missing for %s", t->id);
        return -1;
    }

    /* the server gets a SCRAM verifier, never the password itself */
    verifier = PQencryptPasswordConn(p->conn, pw, t->db_name,
                                     "scram-sha-256");
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

    rc = exists(p, "SELECT 1 FROM pg_roles WHERE rolname = $1", t->db_name);
    if (rc < 0
        || exec_ddl(p, rc ? "update tenant role" : "create tenant role",
                    rc ? "ALTER ROLE" : "CREATE ROLE", t->db_name, tail,
                    err, len) != 0)
    {
        if (rc < 0) {
            snprintf(err, len, "registry: cannot look up role %s", t->db_name);
        }
        return -1;
    }

    /* owning a database needs membership in its owner role */
    if (exec_ddl(p, "join tenant role", "GRANT", t->db_name,
                 " TO CURRENT_USER", err, len) != 0)
    {
        return -1;
    }

    rc = exists(p, "SELECT 1 FROM pg_database WHERE datname = $1",
                t->db_name);
    if (rc < 0) {
        snprintf(err, len, "registry: cannot look up database %s",
                 t->db_name);
        return -1;
    }
    if (rc == 0) {
        lit = PQescapeIdentifier(p->conn, t->db_name, strlen(t->db_name));
        if (lit == NULL) {
            snprintf(err, len, "cannot quote %s", t->db_name);
            return -1;
        }
        snprintf(tail, sizeof(tail), " OWNER %s", lit);
        PQfreemem(lit);

        if (exec_ddl(p, "create tenant database", "CREATE DATABASE",
                     t->db_name, tail, err, len) != 0
            || exec_ddl(p, "close tenant database", "REVOKE ALL ON DATABASE",
                        t->db_name, " FROM PUBLIC", err, len) != 0)
        {
            return -1;
        }
    }

    fill_db_url(p, t);
    return 0;
}

int
tenant_drop_database(struct prov *p, const char *id, char *err, size_t len)
{
    char  name[80];

    db_name_of(id, name, sizeof(name));

    if (exec_ddl(p, "drop tenant database", "DROP DATABASE IF EXISTS", name,
                 " WITH (FORCE)", err, len) != 0
        || exec_ddl(p, "drop tenant role", "DROP ROLE IF EXISTS", name, NULL,
                    err, len) != 0)
    {
        return -1;
    }
    return 0;
}

/* --- ports ---------------------------------------------------------------- */

static int load_ports(struct prov *p, struct tenant *t, char *err,
                      size_t len);


/* what a running tenant's specs need, without changing anything */
int
tenant_prepare(struct prov *p, struct tenant *t, char *err, size_t len)
{
    if (!p->have_key) {
        snprintf(err, len, "secret_key is not configured");
        return -1;
    }
    if (load_secrets(p, t, err, len) != 0 || load_ports(p, t, err, len) != 0
        || tenant_ensure_user(p, t, err, len) != 0)
    {
        return -1;
    }
    fill_db_url(p, t);
    return 0;
}

static int
port_free_here(int port)
{
    struct sockaddr_in sin;
    int                fd, ok, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return 0;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short) port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

static int
load_ports(struct prov *p, struct tenant *t, char *err, size_t len)
{
    const char *params[1] = { t->id };
    PGresult   *res;
    int         i;

    res = db_query(p->conn, "read tenant ports",
                   "SELECT service, port FROM tenant_ports"
                   " WHERE tenant_id = $1", 1, params);
    if (res == NULL) {
        snprintf(err, len, "registry: cannot read ports of %s", t->id);
        return -1;
    }
    json_object_clear(t->ports);
    for (i = 0; i < PQntuples(res); i++) {
        json_object_set_new(t->ports, PQgetvalue(res, i, 0),
                            json_integer(atoi(PQgetvalue(res, i, 1))));
    }
    PQclear(res);
    return 0;
}

/*
 * A port this tenant holds for a service that is down, but that something
 * else on the host now uses (an outgoing connection took it between two
 * attempts, say): give it back so the retry gets another, instead of
 * failing on the same port until the job runs out of attempts.
 */
static int
release_taken_ports(struct prov *p, struct tenant *t, char *err, size_t len)
{
    const char *name, *params[2];
    char        port[16];
    json_t     *v;
    void       *tmp;
    PGresult   *res;

    json_object_foreach_safe(t->ports, tmp, name, v) {
        if (port_free_here((int) json_integer_value(v))
            || p->driver->status(p->driver, t->id, name) != 0)
        {
            continue;
        }
        snprintf(port, sizeof(port), "%lld", (long long) json_integer_value(v));
        log_warn("%s/%s: port %s is in use by something else on this host:"
                 " taking another", t->id, name, port);
        params[0] = port;
        params[1] = t->id;
        res = db_query(p->conn, "release a taken port",
                       "DELETE FROM tenant_ports"
                       " WHERE port = $1::int AND tenant_id = $2", 2, params);
        if (res == NULL) {
            snprintf(err, len, "registry: cannot release port %s of %s", port,
                     t->id);
            return -1;
        }
        PQclear(res);
        json_object_del(t->ports, name);
    }
    return 0;
}

/*
 * One port per service, from port_min..port_max. The registry's primary
 * key settles races between provisioners; a port something else on this
 * host already listens on is skipped.
 */
int
tenant_ensure_ports(struct prov *p, struct tenant *t, char *err, size_t len)
{
    json_t     *svcs, *v;
    const char *name, *params[4];
    char        lo[16], hi[16], from[16], cand[16];
    PGresult   *res, *ins;
    int         i, got, after;

    if (load_ports(p, t, err, len) != 0
        || release_taken_ports(p, t, err, len) != 0)
    {
        return -1;
    }

    snprintf(lo, sizeof(lo), "%d", p->conf.port_min);
    snprintf(hi, sizeof(hi), "%d", p->conf.port_max);

    svcs = blueprint_services(t->bp);
    json_object_foreach(svcs, name, v) {
        if (json_object_get(t->ports, name)) {
            continue;
        }

        /*
         * Walk the range upwards from the last candidate: ports in use on
         * the host or claimed by a racing provisioner are passed over, and
         * the walk ends at the top of the range.
         */
        for (after = p->conf.port_min - 1, got = 0; !got; ) {
            snprintf(from, sizeof(from), "%d", after);
            params[0] = from;
            params[1] = hi;
            res = db_query(p->conn, "find free ports",
                           "SELECT g FROM generate_series($1::int + 1,"
                           "                              $2::int) g"
                           " WHERE NOT EXISTS (SELECT 1 FROM tenant_ports"
                           "                    WHERE port = g)"
                           " ORDER BY g LIMIT 64", 2, params);
            if (res == NULL) {
                snprintf(err, len, "registry: cannot allocate ports");
                return -1;
            }
            if (PQntuples(res) == 0) {
                PQclear(res);
                snprintf(err, len, "no free port left in %s-%s for %s/%s",
                         lo, hi, t->id, name);
                return -1;
            }

            for (i = 0; !got && i < PQntuples(res); i++) {
                after = atoi(PQgetvalue(res, i, 0));
                if (!port_free_here(after)) {
                    continue;
                }
                snprintf(cand, sizeof(cand), "%d", after);
                params[0] = cand;
                params[1] = t->id;
                params[2] = name;
                ins = db_query(p->conn, "claim port",
                               "INSERT INTO tenant_ports (port, tenant_id,"
                               " service) VALUES ($1::int, $2, $3)"
                               " ON CONFLICT DO NOTHING RETURNING port", 3,
                               params);
                if (ins == NULL) {
                    PQclear(res);
                    snprintf(err, len, "registry: cannot claim port %s",
                             cand);
                    return -1;
                }
                got = PQntuples(ins) == 1;
                PQclear(ins);
            }
            PQclear(res);

            /* our own earlier claim for this service may exist: look again */
            if (load_ports(p, t, err, len) != 0) {
                return -1;
            }
            got = json_object_get(t->ports, name) != NULL;
        }
    }
    return 0;
}

/* --- rendering ------------------------------------------------------------ */

static void
context(struct tenant *t, int port, struct tctx *c)
{
    memset(c, 0, sizeof(*c));
    c->bind = t->bind;
    c->tenant = t->id;
    c->theme = t->theme;
    c->dir = t->dir;
    c->domain = t->domain;
    c->display_name = t->display_name;
    c->port = port;
    c->ports = t->ports;
    c->secrets = t->secrets;
    c->db_url = t->db_url[0] ? t->db_url : NULL;
    c->db_name = t->db_url[0] ? t->db_name : NULL;
    c->db_host = t->db_url[0] ? t->db_host : NULL;
    c->db_port = t->db_url[0] ? t->db_port : NULL;
    c->db_user = t->db_url[0] ? t->db_name : NULL;
    c->db_password = json_string_value(json_object_get(t->secrets,
                                                       "db_password"));
    c->admin_email = t->admin_email[0] ? t->admin_email : NULL;
    c->admin_password_crypt = t->admin_crypt[0] ? t->admin_crypt : NULL;
}

/* a file of the blueprint's, rendered into the tenant's directory */
static int
render_file(struct prov *p, struct tenant *t, const char *dest,
            const char *src, struct tctx *c, char *err, size_t len)
{
    char   *d, *s, *body, *out, file[2048], slash[2048], *cut;
    size_t  n;
    int     rc = -1;

    d = template_render(dest, c, err, len);
    s = d ? template_render(src, c, err, len) : NULL;
    if (d == NULL || s == NULL) {
        free(d);
        return -1;
    }

    snprintf(file, sizeof(file), "%s/%s", t->bp->dir, s);
    body = read_file(file, 1024 * 1024, &n);
    if (body == NULL) {
        snprintf(err, len, "%s: cannot read %s: %s", t->bp->path, file,
                 strerror(errno));
        goto done;
    }

    /* a file's contents are a text format: values are escaped for it */
    out = template_render_as(body, c, template_escape_for(d), err, len);
    free(body);
    if (out == NULL) {
        goto done;
    }

    snprintf(slash, sizeof(slash), "%s", d);
    cut = strrchr(slash, '/');
    if (cut) {
        *cut = '\0';
    }
    snprintf(file, sizeof(file), "%s/%s", t->dir, d);

    if (tenant_become(t) != 0) {
        snprintf(err, len, "cannot write %s as its tenant", file);
    } else if ((cut && mkdirs(t->dir, slash, 0750) != 0)
               || write_file(file, out, strlen(out), 0640) != 0)
    {
        snprintf(err, len, "cannot write %s: %s", file, strerror(errno));
        tenant_unbecome(t);
    } else {
        tenant_unbecome(t);
        rc = 0;
    }
    free(out);

done:
    (void) p;
    free(d);
    free(s);
    return rc;
}

int
tenant_write_files(struct prov *p, struct tenant *t, char *err, size_t len)
{
    json_t      *svcs, *svc, *files, *src;
    const char  *name, *dest;
    struct tctx  c;

    if (tenant_ensure_user(p, t, err, len) != 0) {
        return -1;
    }

    svcs = blueprint_services(t->bp);
    json_object_foreach(svcs, name, svc) {
        context(t, (int) json_integer_value(json_object_get(t->ports, name)),
                &c);
        files = json_object_get(svc, "files");
        json_object_foreach(files, dest, src) {
            if (render_file(p, t, dest, json_string_value(src), &c, err, len)
                != 0)
            {
                return -1;
            }
        }
    }
    return 0;
}

/* the admin login (blueprint admin_login): email and a crypt()ed password */
int
tenant_write_login(struct prov *p, struct tenant *t, const char *email,
                   const char *password, char *err, size_t len)
{
    json_t            *login;
    char               salt[12], file[2048], *line, *body;
    const char        *hash;
    struct tctx        c;
    struct crypt_data  cd;

    (void) p;
    login = json_object_get(t->bp->json, "admin_login");
    if (login == NULL) {
        return 0;
    }

    /*
     * The login line is a structured record: a value that could end a
     * field or a line would rewrite it (a job queued behind the API's
     * back is checked here too).
     */
    if (email[strcspn(email, ":\n\r\t ,;\"\\<>")] != '\0'
        || strchr(email, '@') == NULL)
    {
        snprintf(err, len, "the admin email is not a plain address");
        return -1;
    }

    /* MD5-crypt: what busybox httpd's basic auth reads */
    memcpy(salt, "$1$", 3);
    if (secret_password(salt + 3, 8) != 0) {
        snprintf(err, len, "cannot make a salt");
        return -1;
    }
    memset(&cd, 0, sizeof(cd));
    hash = crypt_r(password, salt, &cd);
    if (hash == NULL || hash[0] == '*') {
        snprintf(err, len, "crypt() failed");
        return -1;
    }

    snprintf(t->admin_email, sizeof(t->admin_email), "%s", email);
    snprintf(t->admin_crypt, sizeof(t->admin_crypt), "%s", hash);
    context(t, 0, &c);

    line = template_render_as(json_string_value(json_object_get(login,
                                                                "line")),
                              &c, TPL_LINE, err, len);
    if (line == NULL) {
        return -1;
    }
    if (asprintf(&body, "%s\n", line) < 0) {
        free(line);
        snprintf(err, len, "out of memory");
        return -1;
    }
    free(line);

    snprintf(file, sizeof(file), "%s/%s", t->dir,
             json_string_value(json_object_get(login, "file")));
    if (tenant_become(t) != 0) {
        snprintf(err, len, "cannot write %s as its tenant", file);
        free(body);
        return -1;
    }
    if (write_file(file, body, strlen(body), 0600) != 0) {
        snprintf(err, len, "cannot write %s: %s", file, strerror(errno));
        tenant_unbecome(t);
        free(body);
        return -1;
    }
    tenant_unbecome(t);
    free(body);
    return 0;
}

static char **
str_array(size_t n)
{
    return calloc(n + 1, sizeof(char *));
}

void
spec_free(struct service_spec *s)
{
    size_t i;

    for (i = 0; s->argv && s->argv[i]; i++) {
        free(s->argv[i]);
    }
    for (i = 0; s->envp && s->envp[i]; i++) {
        explicit_bzero(s->envp[i], strlen(s->envp[i]));
        free(s->envp[i]);
    }
    free(s->argv);
    free(s->envp);
    s->argv = NULL;
    s->envp = NULL;
}

int
tenant_spec(struct prov *p, struct tenant *t, const char *service,
            struct service_spec *s, char *err, size_t len)
{
    json_t      *svc, *cmd, *env, *v, *res;
    const char  *k;
    struct tctx  c;
    size_t       i, n;
    char        *val;

    memset(s, 0, sizeof(*s));
    t->bind = (strcmp(p->conf.driver, "docker") == 0
               && strcmp(p->conf.docker_network, "bridge") == 0)
              ? "0.0.0.0" : "127.0.0.1";
    s->tenant = t->id;
    s->service = service;
    s->blueprint = t->blueprint;
    s->dir = t->dir;
    s->uid = t->uid;
    s->port = (int) json_integer_value(json_object_get(t->ports, service));

    svc = json_object_get(blueprint_services(t->bp), service);
    if (svc == NULL) {
        snprintf(err, len, "blueprint %s has no service %s", t->blueprint,
                 service);
        return -1;
    }

    context(t, s->port, &c);

    s->image = json_string_value(json_object_get(svc, "image"));
    res = json_object_get(svc, "resources");
    s->memory_mb = (long) json_integer_value(json_object_get(res,
                                                             "memory_mb"));
    s->cpus = json_number_value(json_object_get(res, "cpus"));

    cmd = json_object_get(svc, "command");
    s->argv = str_array(json_array_size(cmd));
    env = json_object_get(svc, "env");
    n = json_object_size(env);
    s->envp = str_array(n + 4);
    if (s->argv == NULL || s->envp == NULL) {
        snprintf(err, len, "out of memory");
        goto failed;
    }

    json_array_foreach(cmd, i, v) {
        s->argv[i] = template_render(json_string_value(v), &c, err, len);
        if (s->argv[i] == NULL) {
            goto failed;
        }
    }

    i = 0;
    json_object_foreach(env, k, v) {
        val = template_render(json_string_value(v), &c, err, len);
        if (val == NULL || asprintf(&s->envp[i], "%s=%s", k, val) < 0) {
            if (val) {
                explicit_bzero(val, strlen(val));
            }
            free(val);
            s->envp[i] = NULL;
            goto failed;
        }
        explicit_bzero(val, strlen(val));
        free(val);
        i++;
    }

    if (asprintf(&s->envp[i++], "PATH=/usr/local/bin:/usr/bin:/bin") < 0
        || asprintf(&s->envp[i++], "HOME=%s", t->dir) < 0)
    {
        snprintf(err, len, "out of memory");
        goto failed;
    }
    return 0;

failed:
    spec_free(s);
    return -1;
}

int
tenant_start_all(struct prov *p, struct tenant *t, char *err, size_t len)
{
    json_t              *svcs, *v;
    const char          *name;
    struct service_spec  s;
    int                  rc;

    if (!dedicated(t)) {
        return 0;
    }
    svcs = blueprint_services(t->bp);
    json_object_foreach(svcs, name, v) {
        if (tenant_spec(p, t, name, &s, err, len) != 0) {
            return -1;
        }
        rc = p->driver->start(p->driver, &s, err, len);
        spec_free(&s);
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}

int
tenant_stop_all(struct prov *p, struct tenant *t, char *err, size_t len)
{
    json_t      *svcs, *v;
    const char  *name;

    svcs = blueprint_services(t->bp);
    json_object_foreach(svcs, name, v) {
        if (p->driver->stop(p->driver, t->id, name, err, len) != 0) {
            return -1;
        }
    }
    return 0;
}

int
tenant_wait_healthy(struct prov *p, struct tenant *t, char *err, size_t len)
{
    json_t              *svcs, *svc, *h;
    const char          *name;
    char                 addr[128];
    struct service_spec  s;
    int                  timeout;

    if (!dedicated(t)) {
        return 0;
    }
    svcs = blueprint_services(t->bp);
    json_object_foreach(svcs, name, svc) {
        h = json_object_get(svc, "health");
        if (h == NULL) {
            continue;
        }
        timeout = json_is_integer(json_object_get(h, "timeout"))
                  ? (int) json_integer_value(json_object_get(h, "timeout"))
                  : p->conf.health_timeout;

        memset(&s, 0, sizeof(s));
        s.tenant = t->id;
        s.service = name;
        s.port = (int) json_integer_value(json_object_get(t->ports, name));
        if (p->driver->address(p->driver, &s, addr, sizeof(addr)) != 0) {
            snprintf(err, len, "%s/%s: no address", t->id, name);
            return -1;
        }
        if (health_wait(addr, json_string_value(json_object_get(h, "path")),
                        timeout, &tasks_stopping, err, len) != 0)
        {
            char why[256];

            snprintf(why, sizeof(why), "%s", err);
            snprintf(err, len, "%s/%s did not become healthy: %s", t->id,
                     name, why);
            return -1;
        }
    }
    return 0;
}

/* the tenant's own services as its endpoints, replacing what it had */
int
tenant_write_endpoints(struct prov *p, struct tenant *t, char *err,
                       size_t len)
{
    const char          *roles[] = { "site", "admin" }, *svc, *params[3];
    char                 addr[256];
    struct service_spec  s;
    PGresult            *res;
    size_t               i;

    params[0] = t->id;
    res = db_query(p->conn, "clear endpoints",
                   "DELETE FROM tenant_endpoints WHERE tenant_id = $1", 1,
                   params);
    if (res == NULL) {
        snprintf(err, len, "registry: cannot clear endpoints of %s", t->id);
        return -1;
    }
    PQclear(res);

    for (i = 0; i < 2; i++) {
        svc = blueprint_role(t->bp, roles[i]);
        if (svc == NULL) {
            continue;
        }
        memset(&s, 0, sizeof(s));
        s.tenant = t->id;
        s.service = svc;
        s.port = (int) json_integer_value(json_object_get(t->ports, svc));
        if (p->driver->address(p->driver, &s, addr, sizeof(addr)) != 0) {
            snprintf(err, len, "%s/%s has no address", t->id, svc);
            return -1;
        }
        params[1] = roles[i];
        params[2] = addr;
        res = db_query(p->conn, "write an endpoint",
                       "INSERT INTO tenant_endpoints (tenant_id, role,"
                       " address, service) VALUES ($1, $2, $3, NULL)", 3,
                       params);
        if (res == NULL) {
            snprintf(err, len, "registry: cannot write an endpoint of %s",
                     t->id);
            return -1;
        }
        PQclear(res);
    }
    return 0;
}

/* renders a blueprint files map ({dest: src}) for t into another directory */
int
tenant_render_into(struct prov *p, struct tenant *t, json_t *files,
                   const char *into, char *err, size_t len)
{
    char         saved[sizeof(t->dir)];
    const char  *dest;
    json_t      *src;
    struct tctx  c;
    int          rc = 0;

    memcpy(saved, t->dir, sizeof(saved));
    snprintf(t->dir, sizeof(t->dir), "%s", into);
    if (mkdirs(t->dir, NULL, 0755) != 0) {
        snprintf(err, len, "cannot create %s: %s", t->dir, strerror(errno));
        rc = -1;
    }
    context(t, 0, &c);
    json_object_foreach(files, dest, src) {
        if (rc == 0 && render_file(p, t, dest, json_string_value(src), &c,
                                   err, len) != 0)
        {
            rc = -1;
        }
    }
    memcpy(t->dir, saved, sizeof(saved));
    return rc;
}
