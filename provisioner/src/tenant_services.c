#define _GNU_SOURCE

/*
 * A tenant's services: their specs rendered from the blueprint, started
 * and stopped through the driver, waited for until healthy, and written
 * to the registry as the tenant's endpoints.
 */

#include "tenant.h"
#include "db.h"
#include "log.h"
#include "health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    /* a swarm task is reached at its node's address, not on loopback */
    t->bind = ((strcmp(p->conf.driver, "docker") == 0
                && strcmp(p->conf.docker_network, "bridge") == 0)
               || strcmp(p->conf.driver, "swarm") == 0)
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

    tenant_context(t, s->port, &c);

    s->image = json_string_value(json_object_get(svc, "image"));
    res = json_object_get(svc, "resources");
    s->memory_mb = (long) json_integer_value(json_object_get(res,
                                                             "memory_mb"));
    s->cpus = json_number_value(json_object_get(res, "cpus"));
    s->placement = json_object_get(svc, "placement");

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

    if (!tenant_dedicated(t)) {
        return 0;
    }
    svcs = blueprint_services(t->bp);
    json_object_foreach(svcs, name, v) {
        if (tenant_spec(p, t, name, &s, err, len) != 0) {
            return -1;
        }
        rc = p->driver->ops->start(p->driver, &s, err, len);
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
        if (p->driver->ops->stop(p->driver, t->id, name, err, len) != 0) {
            return -1;
        }
    }
    return 0;
}

/* the health check's time limit of a service: its own, or the default */
static int
health_timeout(struct prov *p, json_t *h)
{
    return json_is_integer(json_object_get(h, "timeout"))
           ? (int) json_integer_value(json_object_get(h, "timeout"))
           : p->conf.health_timeout;
}

int
tenant_health_time(struct prov *p, struct tenant *t)
{
    json_t      *svc;
    const char  *name;
    int          total = 0;

    json_object_foreach(blueprint_services(t->bp), name, svc) {
        if (json_object_get(svc, "health") != NULL) {
            total += health_timeout(p, json_object_get(svc, "health"));
        }
    }
    return total;
}

int
tenant_wait_healthy(struct prov *p, struct tenant *t, char *err, size_t len)
{
    json_t              *svcs, *svc, *h;
    const char          *name;
    char                 addr[128];
    struct service_spec  s;
    int                  timeout;

    if (!tenant_dedicated(t)) {
        return 0;
    }
    svcs = blueprint_services(t->bp);
    json_object_foreach(svcs, name, svc) {
        h = json_object_get(svc, "health");
        if (h == NULL) {
            continue;
        }
        timeout = health_timeout(p, h);

        memset(&s, 0, sizeof(s));
        s.tenant = t->id;
        s.service = name;
        s.port = (int) json_integer_value(json_object_get(t->ports, name));
        if (p->driver->ops->address(p->driver, &s, addr, sizeof(addr)) != 0) {
            snprintf(err, len, "%s/%s: no address", t->id, name);
            return -1;
        }
        if (health_wait(addr, json_string_value(json_object_get(h, "path")),
                        timeout, p->stop, err, len) != 0)
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

/*
 * Where the service of a role (site, admin) is: 1 with addr, 0 when the
 * blueprint has no service in that role, -1 when the driver has no address
 */
static int
role_address(struct prov *p, struct tenant *t, const char *role, char *addr,
             size_t len)
{
    struct service_spec  s;
    const char          *svc;

    svc = blueprint_role(t->bp, role);
    if (svc == NULL) {
        return 0;
    }
    memset(&s, 0, sizeof(s));
    s.tenant = t->id;
    s.service = svc;
    s.port = (int) json_integer_value(json_object_get(t->ports, svc));
    return p->driver->ops->address(p->driver, &s, addr, len) == 0 ? 1 : -1;
}

/* the tenant's own services as its endpoints, replacing what it had */
int
tenant_endpoints_batch(struct prov *p, struct tenant *t,
                       struct tenant_endpoint_rows *r, struct db_batch *b,
                       char *err, size_t len)
{
    const char  *roles[] = { "site", "admin" };
    size_t       i;

    r->tenant[0] = t->id;
    if (db_batch_add(b, "clear endpoints",
                     "DELETE FROM tenant_endpoints WHERE tenant_id = $1", 1,
                     r->tenant) < 0)
    {
        snprintf(err, len, "too many statements for one batch");
        return -1;
    }

    for (i = 0; i < 2; i++) {
        switch (role_address(p, t, roles[i], r->addr[i], sizeof(r->addr[i]))) {
        case 0:
            continue;
        case -1:
            snprintf(err, len, "%s's %s service has no address", t->id,
                     roles[i]);
            return -1;
        default:
            break;
        }
        r->row[i][0] = t->id;
        r->row[i][1] = roles[i];
        r->row[i][2] = r->addr[i];
        if (db_batch_add(b, "write an endpoint",
                         "INSERT INTO tenant_endpoints (tenant_id, role,"
                         " address, service) VALUES ($1, $2, $3, NULL)", 3,
                         r->row[i]) < 0)
        {
            snprintf(err, len, "too many statements for one batch");
            return -1;
        }
    }
    return 0;
}

int
tenant_write_endpoints(struct prov *p, struct tenant *t, char *err,
                       size_t len)
{
    struct db_batch              b;
    struct tenant_endpoint_rows  r;

    memset(&b, 0, sizeof(b));
    if (tenant_endpoints_batch(p, t, &r, &b, err, len) != 0) {
        return -1;
    }
    return db_batch_run(p->conn, &b, err, len);
}


int
tenant_follow_endpoints(struct prov *p, struct tenant *t, char *err,
                        size_t len)
{
    const char  *roles[] = { "site", "admin" }, *params[2];
    char         addr[256];
    PGresult    *res;
    size_t       i;
    int          differs = 0;

    if (json_object_size(t->ports) == 0
        && tenant_load_ports(p, t, err, len) != 0)
    {
        return -1;
    }

    params[0] = t->id;
    for (i = 0; i < 2 && !differs; i++) {
        switch (role_address(p, t, roles[i], addr, sizeof(addr))) {
        case 0:
            continue;
        case -1:
            /* no running task: the reconciler starts it first */
            return 0;
        default:
            break;
        }
        params[1] = roles[i];
        res = db_query(p->conn, "read an endpoint",
                       "SELECT address FROM tenant_endpoints"
                       " WHERE tenant_id = $1 AND role = $2", 2, params);
        if (res == NULL) {
            snprintf(err, len, "registry: cannot read the endpoints of %s",
                     t->id);
            return -1;
        }
        differs = PQntuples(res) != 1
                  || strcmp(PQgetvalue(res, 0, 0), addr) != 0;
        if (differs) {
            log_warn("reconcile: %s's %s is now at %s (the registry had %s):"
                     " rewriting its endpoints", t->id, roles[i], addr,
                     PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "none");
        }
        PQclear(res);
    }
    if (!differs) {
        return 0;
    }

    /* one transaction: the edge never sees the tenant without endpoints */
    if (db_begin(p->conn) != 0) {
        snprintf(err, len, "registry: cannot begin for %s", t->id);
        return -1;
    }
    if (tenant_write_endpoints(p, t, err, len) != 0) {
        db_rollback(p->conn);
        return -1;
    }
    if (db_commit(p->conn) != 0) {
        snprintf(err, len, "registry: cannot commit the endpoints of %s",
                 t->id);
        return -1;
    }
    return 1;
}
