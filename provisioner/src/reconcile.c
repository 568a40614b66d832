#define _POSIX_C_SOURCE 200809L

/*
 * The reconciler compares the registry with what the driver runs. Tenants
 * with a queued or running job are left to that job. Restarts back off per
 * service (1, 2, 4 ... 60 s) so a service that cannot start does not spin.
 */

#include "reconcile.h"
#include "db.h"
#include "log.h"
#include "tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "tenant/service" -> {"fails": n, "next": t} */
static json_t *backoff;

/* routing-only tenants already reported, so each is said once */
static json_t *unmanaged;

/* what the passes did since the daemon started, for its metrics */
static struct reconcile_counts counts;

void
reconcile_counts(struct reconcile_counts *out)
{
    *out = counts;
}

static int
may_restart(const char *tenant, const char *service, time_t now)
{
    char    key[256];
    json_t *b;

    snprintf(key, sizeof(key), "%s/%s", tenant, service);
    b = json_object_get(backoff, key);
    return b == NULL
           || now >= (time_t) json_integer_value(json_object_get(b, "next"));
}

static void
restarted(const char *tenant, const char *service, time_t now)
{
    char       key[256];
    json_t    *b;
    long long  fails;

    snprintf(key, sizeof(key), "%s/%s", tenant, service);
    b = json_object_get(backoff, key);
    fails = b ? json_integer_value(json_object_get(b, "fails")) + 1 : 1;
    json_object_set_new(backoff, key,
                        json_pack("{s:I, s:I}", "fails", fails, "next",
                                  (json_int_t) now
                                  + (fails >= 6 ? 60 : 1LL << (fails - 1))));
}

static void
healthy(const char *tenant, const char *service)
{
    char key[256];

    snprintf(key, sizeof(key), "%s/%s", tenant, service);
    json_object_del(backoff, key);
}

static void
converge(struct prov *p, const char *id, const char *status)
{
    struct tenant        t;
    struct service_spec  s;
    json_t              *svcs, *v;
    const char          *name;
    char                 err[512];
    int                  active, up, all_up = 1, prepared = 0;
    time_t               now = time(NULL);

    if (tenant_load(p, id, &t, err, sizeof(err)) != 0) {
        tenant_free(&t);
        return;
    }

    active = strcmp(status, "active") == 0;
    svcs = blueprint_services(t.bp);

    json_object_foreach(svcs, name, v) {
        up = p->driver->ops->status(p->driver, id, name) == 1;
        all_up = all_up && up;

        if (active && up) {
            healthy(id, name);
        } else if (active && !up && may_restart(id, name, now)) {
            if (!prepared && tenant_prepare(p, &t, err, sizeof(err)) != 0) {
                log_err("reconcile %s: %s", id, err);
                break;
            }
            prepared = 1;
            restarted(id, name, now);
            counts.started++;
            log_warn("reconcile: %s/%s should run but does not: starting it",
                     id, name);
            if (tenant_spec(p, &t, name, &s, err, sizeof(err)) != 0
                || p->driver->ops->start(p->driver, &s, err, sizeof(err)) != 0)
            {
                log_err("reconcile %s/%s: %s", id, name, err);
            }
            spec_free(&s);
        } else if (!active && up) {
            counts.stopped++;
            log_warn("reconcile: %s/%s runs while suspended: stopping it", id,
                     name);
            if (p->driver->ops->stop(p->driver, id, name, err, sizeof(err)) != 0) {
                log_err("reconcile %s/%s: %s", id, name, err);
            }
        }
    }

    if (active && all_up && p->driver->ops->moves) {
        switch (tenant_follow_endpoints(p, &t, err, sizeof(err))) {
        case -1:
            log_err("reconcile %s: %s", id, err);
            break;
        case 1:
            counts.moved++;
            break;
        default:
            break;
        }
    }

    tenant_free(&t);
}

/*
 * PROVISIONER_TESTPOINT=queue-during-reconcile:TENANT (tests only): a logs
 * job for TENANT is queued on our own connection as the pass ends. Its
 * "jobs" notification reaches libpq with the statement's answer, not the
 * socket: exactly what a job queued by someone else during a pass can do,
 * made certain, so a test can show it is not left waiting for the poll.
 */
static void
queue_during_pass(struct prov *p)
{
    const char *tp = getenv("PROVISIONER_TESTPOINT"), *params[1];
    PGresult   *res;
    size_t      n = sizeof("queue-during-reconcile:") - 1;

    if (tp == NULL || strncmp(tp, "queue-during-reconcile:", n) != 0) {
        return;
    }
    params[0] = tp + n;
    res = db_query(p->conn, "queue a job during the pass (testpoint)",
                   "INSERT INTO jobs (tenant_id, kind, payload)"
                   " SELECT id, 'logs', '{\"lines\": 1}' FROM tenants"
                   "  WHERE id = $1"
                   "    AND NOT EXISTS (SELECT 1 FROM jobs WHERE kind = 'logs'"
                   "                       AND tenant_id = $1)", 1, params);
    if (res != NULL) {
        log_warn("testpoint: queued a job during the reconcile pass");
        PQclear(res);
    }
}

int
reconcile(struct prov *p)
{
    PGresult    *res;
    json_t      *have, *known, *svcs;
    const char  *tenant;
    char         err[512];
    int          i;

    if ((backoff == NULL && (backoff = json_object()) == NULL)
        || (unmanaged == NULL && (unmanaged = json_object()) == NULL))
    {
        return -1;
    }
    counts.passes++;

    res = db_query(p->conn, "read tenants to reconcile",
                   "SELECT t.id, t.status, t.mode = 'dedicated'"
                   "       AND t.status IN ('active', 'suspended')"
                   "       AND NOT EXISTS (SELECT 1 FROM jobs j"
                   "                        WHERE j.tenant_id = t.id"
                   "                          AND j.status IN ('queued',"
                   "                                           'running')),"
                   "       t.managed"
                   "  FROM tenants t", 0, NULL);
    if (res == NULL) {
        return -1;
    }

    have = p->driver->ops->list(p->driver);
    known = json_object();
    if (have == NULL || known == NULL) {
        PQclear(res);
        json_decref(have);
        json_decref(known);
        return -1;
    }

    for (i = 0; i < PQntuples(res); i++) {
        tenant = PQgetvalue(res, i, 0);
        json_object_set_new(known, tenant, json_true());

        /*
         * Rows an operator inserted by hand route to endpoints the operator
         * runs: nothing here is ours to start or stop.
         */
        if (PQgetvalue(res, i, 3)[0] != 't') {
            if (json_object_get(unmanaged, tenant) == NULL) {
                log_info("reconcile: %s is routing-only (not made by a create"
                         " job): the provisioner leaves it alone", tenant);
                json_object_set_new(unmanaged, tenant, json_true());
            }
            continue;
        }

        if (PQgetvalue(res, i, 2)[0] == 't') {
            converge(p, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
        }
    }
    PQclear(res);

    /* labelled with a tenant the registry no longer has: an orphan */
    json_object_foreach(have, tenant, svcs) {
        if (json_object_get(known, tenant) == NULL) {
            counts.removed++;
            log_warn("reconcile: %s is not in the registry: removing it",
                     tenant);
            if (p->driver->ops->remove(p->driver, tenant, err, sizeof(err)) != 0) {
                log_err("reconcile: removing orphan %s: %s", tenant, err);
            }
        }
    }

    json_decref(have);
    json_decref(known);

    queue_during_pass(p);
    return 0;
}
