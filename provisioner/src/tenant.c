#define _GNU_SOURCE

/*
 * A tenant as the provisioner works on it: read from the registry, with
 * its blueprint, and prepared (secrets, ports, user, database address) for
 * what its specs need.  Each concern has its file: tenant_secrets.c,
 * tenant_db.c, tenant_ports.c, tenant_user.c, tenant_files.c,
 * tenant_services.c.
 */

#include "tenant.h"
#include "runtime.h"
#include "db.h"

#include <stdio.h>
#include <string.h>

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
        return PROV_NONE;
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

    tenant_db_name(t->id, t->db_name, sizeof(t->db_name));

    t->bp = blueprint_find(&p->blueprints, t->blueprint);
    if (t->bp == NULL) {
        snprintf(err, len, "blueprint \"%s\" is not loaded (see the "
                 "provisioner's blueprints directory)", t->blueprint);
        return -1;
    }

    t->ports = json_object();
    t->secrets = json_object();
    /* the installed npm runtimes, for blueprints that name one */
    t->runtimes = t->bp->runtimes ? runtime_installed(p->runtime_dirs)
                                  : json_object();
    if (t->ports == NULL || t->secrets == NULL || t->runtimes == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    return 0;
}

void
tenant_free(struct tenant *t)
{
    const char  *name;
    json_t      *v;

    /* plaintext secrets do not outlive their use in freed memory */
    json_object_foreach(t->secrets, name, v) {
        if (json_is_string(v)) {
            explicit_bzero((char *) json_string_value(v),
                           json_string_length(v));
        }
    }

    json_decref(t->ports);
    json_decref(t->secrets);
    json_decref(t->runtimes);
    t->ports = NULL;
    t->secrets = NULL;
    t->runtimes = NULL;
}

int
tenant_dedicated(const struct tenant *t)
{
    return strcmp(t->mode, "dedicated") == 0;
}

/* what a running tenant's specs need, without changing anything */
int
tenant_prepare(struct prov *p, struct tenant *t, char *err, size_t len)
{
    if (!p->have_key) {
        snprintf(err, len, "secret_key is not configured");
        return -1;
    }
    if (tenant_load_secrets(p, t, err, len) != 0
        || tenant_load_ports(p, t, err, len) != 0
        || tenant_ensure_user(p, t, err, len) != 0)
    {
        return -1;
    }
    tenant_fill_db_url(p, t);
    return 0;
}
