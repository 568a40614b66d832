#define _XOPEN_SOURCE 700

/*
 * Shared mode with a runtime the platform runs: a blueprint whose "shared"
 * names a runtime blueprint ({"runtime": "static-shared", "files": {...}})
 * has its shared tenants served by one instance of that runtime. The
 * instance is a tenant of the platform's own, named rt-<runtime>, created
 * by the first shared create that needs it and from then on reconciled
 * like any tenant (restarted when it dies). A shared tenant's files are
 * rendered into the runtime's sites/<tenant>/, its endpoints are the
 * runtime's, and it is active only once the runtime serves its page.
 */

#include "shared.h"
#include "db.h"
#include "fsutil.h"
#include "health.h"
#include "log.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* the advisory lock class that serialises bringing a runtime up */
#define RUNTIME_LOCK  "7340014"

const char *
shared_runtime_of(const struct blueprint *bp)
{
    json_t *shared = json_object_get(bp->json, "shared");

    return json_string_value(json_object_get(shared, "runtime"));
}

void
shared_runtime_id(const char *runtime, char *out, size_t len)
{
    size_t i;

    snprintf(out, len, "rt-%s", runtime);
    for (i = 0; out[i]; i++) {
        if (out[i] == '_') {
            out[i] = '-';
        }
    }
}

/* brings the runtime tenant up: every step finds its work done if it is */
static int
bring_up(struct prov *p, struct tenant *rt, char *err, size_t len)
{
    const char *params[1] = { rt->id };

    if (tenant_ensure_secrets(p, rt, err, len) != 0
        || tenant_ensure_database(p, rt, err, len) != 0
        || tenant_ensure_ports(p, rt, err, len) != 0
        || tenant_ensure_user(p, rt, err, len) != 0
        || tenant_write_files(p, rt, err, len) != 0
        || tenant_start_all(p, rt, err, len) != 0
        || tenant_wait_healthy(p, rt, err, len) != 0)
    {
        return -1;
    }

    if (db_begin(p->conn) != 0) {
        snprintf(err, len, "registry: cannot begin");
        return -1;
    }
    if (tenant_write_endpoints(p, rt, err, len) != 0
        || db_run(p->conn, "mark the runtime active",
                  "UPDATE tenants SET status = 'active', updated_at = now()"
                  " WHERE id = $1", 1, params, err, len) != 0
        || db_commit(p->conn) != 0)
    {
        db_rollback(p->conn);
        if (err[0] == '\0') {
            snprintf(err, len, "registry: cannot commit");
        }
        return -1;
    }
    log_info("shared runtime %s is up", rt->id);
    return 0;
}

int
shared_ensure_runtime(struct prov *p, const struct tenant *t, char *rt_id,
                      size_t rt_len, char *err, size_t len)
{
    const char              *runtime = shared_runtime_of(t->bp), *params[3];
    const struct blueprint  *rbp;
    struct tenant            rt;
    char                     desc[128], scratch[128];
    int                      rc;

    rbp = runtime ? blueprint_find(&p->blueprints, runtime) : NULL;
    if (rbp == NULL) {
        snprintf(err, len, "%s: its shared runtime blueprint \"%s\" is not "
                 "loaded", t->bp->path, runtime ? runtime : "");
        return -1;
    }
    if (!blueprint_has(rbp, "drivers", p->driver->name)) {
        snprintf(err, len, "shared runtime %s cannot run on the %s driver",
                 runtime, p->driver->name);
        return -1;
    }

    shared_runtime_id(runtime, rt_id, rt_len);
    snprintf(desc, sizeof(desc), "the shared runtime of %s", t->blueprint);
    params[0] = rt_id;
    params[1] = runtime;
    params[2] = desc;

    /* one provisioner at a time brings a runtime up; others then find it */
    if (db_run(p->conn, "lock the shared runtime",
               "SELECT pg_advisory_lock(" RUNTIME_LOCK ", hashtext($1))", 1,
               params, err, len) != 0
        || db_run(p->conn, "record the shared runtime",
                  "INSERT INTO tenants (id, blueprint, display_name, status,"
                  "                     managed)"
                  " VALUES ($1, $2, $3, 'provisioning', true)"
                  " ON CONFLICT (id) DO NOTHING", 3, params, err, len) != 0)
    {
        return -1;
    }

    rc = tenant_load(p, rt_id, &rt, err, len);
    if (rc == 0) {
        if (strcmp(rt.status, "active") == 0) {
            /* the reconciler restarts a dead one; do not wait for it here */
            rc = tenant_prepare(p, &rt, err, len) != 0
                 || tenant_start_all(p, &rt, err, len) != 0
                 || tenant_wait_healthy(p, &rt, err, len) != 0 ? -1 : 0;
        } else {
            rc = bring_up(p, &rt, err, len);
        }
    } else if (rc == PROV_NONE) {
        snprintf(err, len, "shared runtime %s vanished", rt_id);
        rc = -1;
    }
    tenant_free(&rt);

    /* a failed unlock ends with the connection; err keeps the cause */
    (void) db_run(p->conn, "unlock the shared runtime",
                  "SELECT pg_advisory_unlock(" RUNTIME_LOCK ", hashtext($1))",
                  1, params, scratch, sizeof(scratch));
    return rc;
}

static int
public_mode(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void) st;
    (void) f;
    /* a tenant's public pages: the runtime's workers read them */
    return chmod(path, type == FTW_D ? 0755 : 0644);
}

static int
site_dir(struct prov *p, const char *rt_id, const char *tenant, char *out,
         size_t len)
{
    int n = snprintf(out, len, "%s/%s/home/sites/%s", p->conf.state_dir,
                     rt_id, tenant);

    return n < 0 || (size_t) n >= len ? -1 : 0;
}

int
shared_write_files(struct prov *p, struct tenant *t, const char *rt_id,
                   char *err, size_t len)
{
    char    dir[1024], sites[1024];
    json_t *files = json_object_get(json_object_get(t->bp->json, "shared"),
                                    "files");

    if (site_dir(p, rt_id, t->id, dir, sizeof(dir)) != 0) {
        snprintf(err, len, "state_dir path too long for %s", t->id);
        return -1;
    }
    snprintf(sites, sizeof(sites), "%s/%s/home", p->conf.state_dir, rt_id);
    if (mkdirs(sites, "sites", 0755) != 0 || chmod(sites, 0755) != 0) {
        snprintf(err, len, "cannot create %s/sites: %s", sites,
                 strerror(errno));
        return -1;
    }
    if (tenant_render_into(p, t, files, dir, err, len) != 0) {
        return -1;
    }
    if (nftw(dir, public_mode, 16, FTW_PHYS) != 0) {
        snprintf(err, len, "cannot open up %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int
shared_remove_files(struct prov *p, const char *tenant, char *err, size_t len)
{
    const char  *runtime;
    char         rt_id[64], dir[1024];
    size_t       i;

    for (i = 0; i < p->blueprints.n; i++) {
        runtime = shared_runtime_of(&p->blueprints.items[i]);
        if (runtime == NULL) {
            continue;
        }
        shared_runtime_id(runtime, rt_id, sizeof(rt_id));
        if (site_dir(p, rt_id, tenant, dir, sizeof(dir)) == 0
            && rmtree(dir) != 0 && errno != ENOENT)
        {
            snprintf(err, len, "cannot remove %s: %s", dir, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* the runtime serves the tenant's own page: not an error page */
int
shared_wait_healthy(struct prov *p, struct tenant *t, const char *rt_id,
                    char *err, size_t len)
{
    const char *params[1] = { rt_id };
    PGresult   *res;
    char        addr[256], why[256];
    int         rc;

    res = db_query(p->conn, "read the runtime's endpoint",
                   "SELECT address FROM tenant_endpoints"
                   " WHERE tenant_id = $1 AND role = 'site' LIMIT 1", 1,
                   params);
    if (res == NULL || PQntuples(res) != 1) {
        if (res) {
            PQclear(res);
        }
        snprintf(err, len, "shared runtime %s has no site endpoint", rt_id);
        return -1;
    }
    snprintf(addr, sizeof(addr), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    rc = health_wait_for(addr, "/", t->id, 400, p->conf.health_timeout,
                         p->stop, err, len);
    if (rc != 0) {
        snprintf(why, sizeof(why), "%s", err);
        snprintf(err, len, "shared runtime %s does not serve %s: %s", rt_id,
                 t->id, why);
    }
    return rc;
}
