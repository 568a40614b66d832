#define _GNU_SOURCE

/*
 * Job executors. Every step is idempotent, so a job resumed after a crash
 * simply runs its steps again, each finding its work done; jobs.steps
 * records how far each attempt got. Success is written in one transaction
 * with the job's own completion.
 */

#include "tasks.h"
#include "task.h"
#include "acme.h"
#include "db.h"
#include "log.h"
#include "secret.h"
#include "shared.h"
#include "tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The tenant's endpoints, replaced in the final transaction: its own
 * services (dedicated), the runtime the platform runs for its blueprint
 * (shared, runtime form), or the blueprint's fixed shared addresses.
 */
static int
write_endpoints(struct prov *p, struct tenant *t, const char *rt_id,
                struct tenant_endpoint_rows *r, struct db_batch *b,
                char *err)
{
    const char  *roles[] = { "site", "admin" }, *addr;
    json_t      *shared;
    size_t       i;
    int          full;

    if (strcmp(t->mode, "shared") != 0) {
        return tenant_endpoints_batch(p, t, r, b, err, ERRLEN);
    }

    r->tenant[0] = t->id;
    r->tenant[1] = rt_id;
    full = db_batch_add(b, "clear endpoints",
                        "DELETE FROM tenant_endpoints WHERE tenant_id = $1",
                        1, r->tenant) < 0;

    if (rt_id != NULL) {
        full |= db_batch_add(b, "copy the runtime's endpoints",
                             "INSERT INTO tenant_endpoints (tenant_id, role,"
                             " address, weight)"
                             " SELECT $1, role, address, weight"
                             "   FROM tenant_endpoints WHERE tenant_id = $2",
                             2, r->tenant) < 0;
    } else {
        shared = json_object_get(t->bp->json, "shared");

        for (i = 0; i < 2; i++) {
            addr = json_string_value(json_object_get(shared, roles[i]));
            if (addr == NULL) {
                continue;
            }
            r->row[i][0] = t->id;
            r->row[i][1] = roles[i];
            r->row[i][2] = addr;
            full |= db_batch_add(b, "write an endpoint",
                                 "INSERT INTO tenant_endpoints (tenant_id,"
                                 " role, address, service)"
                                 " VALUES ($1, $2, $3, NULL)", 3,
                                 r->row[i]) < 0;
        }
    }

    if (full) {
        snprintf(err, ERRLEN, "too many statements for one batch");
        return -1;
    }
    return 0;
}

#define SET_STATUS_SQL                                                      \
    "UPDATE tenants SET status = $3, updated_at = now()"                     \
    " WHERE id = $1 AND status = $2"

static int
set_status(struct prov *p, const char *id, const char *from, const char *to,
           char *err)
{
    const char *params[3] = { id, from, to };

    return db_run(p->conn, "update the tenant's status", SET_STATUS_SQL, 3,
                  params, err, ERRLEN);
}

/* the blueprint's admin login is a command to run, not a file to write */
static int
login_by_command(const struct tenant *t)
{
    json_t *login = json_object_get(t->bp->json, "admin_login");

    return login != NULL && json_object_get(login, "command") != NULL;
}

/* --- create --------------------------------------------------------------- */

static enum outcome
do_create(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    char                          email[340], password[21], url[400],
                                  admin_url[400], rt_id[64];
    const char                   *status[3];
    struct db_batch               b;
    struct tenant_endpoint_rows   rows;
    json_t                       *result;
    int                           dedicated, clone, setup;
    const char                   *runtime;
    const struct blueprint       *rbp;

    if (strcmp(t->status, "provisioning") != 0) {
        return task_finish(p, j, task_skipped("the tenant is no longer provisioning"),
                      err);
    }

    dedicated = strcmp(t->mode, "dedicated") == 0;

    if (dedicated && !blueprint_has(t->bp, "drivers", p->driver->name)) {
        snprintf(err, ERRLEN, "blueprint %s cannot run on the %s driver "
                 "(%.300s lists the drivers it supports)", t->blueprint,
                 p->driver->name, t->bp->path);
        return PERMANENT;
    }

    runtime = dedicated ? NULL : shared_runtime_of(t->bp);
    if (runtime != NULL) {
        rbp = blueprint_find(&p->blueprints, runtime);
        if (rbp == NULL || !blueprint_has(rbp, "drivers", p->driver->name)) {
            snprintf(err, ERRLEN, "shared runtime %s of blueprint %s is %s",
                     runtime, t->blueprint, rbp == NULL ? "not loaded"
                     : "not runnable on this driver");
            return PERMANENT;
        }
    }

    clone = json_is_integer(json_object_get(j->payload, "from_backup"));

    /*
     * A step with nothing to do for this tenant is not recorded: each
     * record is a round trip to the registry, and a burst of creates
     * waits on every one of them.
     */
    STEP("secrets", tenant_ensure_secrets(p, t, err, ERRLEN));
    if (blueprint_database(t->bp)) {
        STEP("database", tenant_ensure_database(p, t, err, ERRLEN));
    }
    /* a clone: the backup's data, the blueprint's files rendered over its
     * files next, and no setup (its database is set up already) */
    if (clone) {
        if (task_extend(p, j, 3600, err) != 0) {
            return LOST;
        }
        STEP("restore", backup_clone_into(p, j, t, err));
    }

    email[0] = password[0] = rt_id[0] = '\0';

    if (runtime != NULL) {
        STEP("runtime", shared_ensure_runtime(p, t, rt_id, sizeof(rt_id),
                                              err, ERRLEN));
        STEP("files", shared_write_files(p, t, rt_id, err, ERRLEN));
        STEP("health", shared_wait_healthy(p, t, rt_id, err, ERRLEN));
    }

    if (dedicated) {
        STEP("ports", tenant_ensure_ports(p, t, err, ERRLEN));

        /* an application may refuse addresses under a test domain such
         * as localhost: admin_email_domain gives it one it accepts */
        if (p->conf.admin_email_domain[0]) {
            snprintf(email, sizeof(email), "admin@%s.%.255s", t->id,
                     p->conf.admin_email_domain);
        } else {
            snprintf(email, sizeof(email), "admin@%s", t->domain);
        }
        if (secret_password(password, 20) != 0) {
            snprintf(err, ERRLEN, "cannot make the admin password");
            return FAILED;
        }
        /* each step's record renews the lease for the one after it */
        setup = !clone && json_object_get(t->bp->json, "setup") != NULL;
        STEP_FOR("files", setup ? tenant_setup_time(t) : 0,
                 tenant_write_files(p, t, err, ERRLEN)
                 || tenant_write_login(p, t, email, password, err, ERRLEN));
        if (setup) {
            STEP("setup", tenant_run_setup(p, t, err, ERRLEN));
        }
        /* made while the service starts: a login made by the application's
         * own command boots about as slowly as the application itself */
        STEP_FOR("services", login_by_command(t) ? tenant_setup_time(t)
                                                 : tenant_health_time(p, t),
                 tenant_start_all(p, t, err, ERRLEN));
        if (login_by_command(t)) {
            STEP_FOR("admin", tenant_health_time(p, t),
                     tenant_run_admin_login(p, t, email, password, err,
                                            ERRLEN));
        }
        STEP("health", tenant_wait_healthy(p, t, err, ERRLEN));
    }

    failpoint(j->kind, "finish");

    snprintf(url, sizeof(url), "http://%s:%d/", t->domain,
             p->conf.base_port);
    snprintf(admin_url, sizeof(admin_url), "http://admin.%s:%d/", t->domain,
             p->conf.base_port);

    result = json_pack("{s:s, s:s}", "url", url, "admin_url", admin_url);
    if (result && password[0]) {
        /* handed out once by the API's first read of the job */
        json_object_set_new(result, "admin",
                            json_pack("{s:s, s:s}", "email", email,
                                      "password", password));
    }
    explicit_bzero(password, sizeof(password));

    /* the last transaction in one round trip: the routes, the status and
     * the job's end go together or not at all */
    memset(&b, 0, sizeof(b));
    status[0] = t->id;
    status[1] = "provisioning";
    status[2] = "active";
    db_batch_add(&b, "begin transaction", "BEGIN", 0, NULL);
    if (write_endpoints(p, t, rt_id[0] ? rt_id : NULL, &rows, &b, err) != 0
        || db_batch_add(&b, "update the tenant's status", SET_STATUS_SQL, 3,
                        status) < 0)
    {
        json_decref(result);
        if (err[0] == '\0') {
            snprintf(err, ERRLEN, "too many statements for one batch");
        }
        return FAILED;
    }
    return task_finish_batch(p, j, &b, result, err);
}

/* --- delete --------------------------------------------------------------- */

static enum outcome
do_delete(struct prov *p, struct job *j, char *err)
{
    const char *params[1] = { j->tenant };

    STEP("services", p->driver->ops->remove(p->driver, j->tenant, err, ERRLEN)
                     || shared_remove_files(p, j->tenant, err, ERRLEN));
    STEP("database", tenant_drop_database(p, j->tenant, err, ERRLEN));

    failpoint(j->kind, "finish");

    /* hosts, endpoints, ports and secrets go with the row; its backups
     * stay, for backup_keep_deleted */
    if (job_begin(p) != 0
        || db_run(p->conn, "delete the tenant",
                  "DELETE FROM tenants WHERE id = $1", 1, params, err,
                  ERRLEN) != 0
        || db_run(p->conn, "mark its backups",
                  "UPDATE tenant_backups SET tenant_gone_at = now()"
                  " WHERE tenant_id = $1 AND tenant_gone_at IS NULL", 1,
                  params, err, ERRLEN) != 0)
    {
        db_rollback(p->conn);
        return FAILED;
    }
    return task_finish(p, j, json_pack("{s:b}", "deleted", 1), err);
}

/* --- suspend, resume ------------------------------------------------------- */

static enum outcome
do_suspend(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    if (strcmp(t->status, "suspended") != 0) {
        return task_finish(p, j, task_skipped("the tenant is no longer suspended"),
                      err);
    }
    STEP("services", tenant_stop_all(p, t, err, ERRLEN));
    if (job_begin(p) != 0) {
        return FAILED;
    }
    return task_finish(p, j, json_pack("{s:s}", "status", "suspended"), err);
}

static enum outcome
do_resume(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    if (strcmp(t->status, "suspended") != 0) {
        return task_finish(p, j, task_skipped("the tenant is not suspended"), err);
    }
    STEP("prepare", tenant_prepare(p, t, err, ERRLEN));
    STEP_FOR("services", tenant_health_time(p, t),
             tenant_start_all(p, t, err, ERRLEN));
    STEP("health", tenant_wait_healthy(p, t, err, ERRLEN));

    if (job_begin(p) != 0
        || set_status(p, t->id, "suspended", "active", err) != 0)
    {
        db_rollback(p->conn);
        return FAILED;
    }
    return task_finish(p, j, json_pack("{s:s}", "status", "active"), err);
}

/* --- seed_admin ------------------------------------------------------------ */

static enum outcome
do_seed_admin(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    const char          *email, *password, *svc, *params[1];
    json_t              *login;
    struct service_spec  s;

    email = json_string_value(json_object_get(j->payload, "email"));
    password = json_string_value(json_object_get(j->payload, "password"));
    login = json_object_get(t->bp->json, "admin_login");

    if (email == NULL || password == NULL) {
        snprintf(err, ERRLEN, "the job has no email and password");
        return PERMANENT;
    }
    if (login == NULL) {
        snprintf(err, ERRLEN, "blueprint %s has no admin login to seed",
                 t->blueprint);
        return PERMANENT;
    }

    STEP_FOR("prepare", login_by_command(t) ? tenant_setup_time(t) : 0,
             tenant_prepare(p, t, err, ERRLEN));
    STEP("login", login_by_command(t)
                  ? tenant_run_admin_login(p, t, email, password, err, ERRLEN)
                  : tenant_write_login(p, t, email, password, err, ERRLEN));

    /* a file login is read by the admin service at start; a command's
     * login is the application's own, live at once */
    svc = json_string_value(json_object_get(login, "service"));
    if (!login_by_command(t) && strcmp(t->status, "active") == 0) {
        if (p->driver->ops->stop(p->driver, t->id, svc, err, ERRLEN) != 0
            || tenant_spec(p, t, svc, &s, err, ERRLEN) != 0)
        {
            return FAILED;
        }
        if (p->driver->ops->start(p->driver, &s, err, ERRLEN) != 0) {
            spec_free(&s);
            return FAILED;
        }
        spec_free(&s);
    }

    /* the password leaves the registry with the job's completion */
    params[0] = j->idstr;
    if (job_begin(p) != 0
        || db_run(p->conn, "forget the password",
                  "UPDATE jobs SET payload = payload - 'password'"
                  " WHERE id = $1", 1, params, err, ERRLEN) != 0)
    {
        db_rollback(p->conn);
        return FAILED;
    }
    return task_finish(p, j, json_pack("{s:s}", "email", email), err);
}

/* --- logs ------------------------------------------------------------------ */

static enum outcome
do_logs(struct prov *p, struct job *j, struct tenant *t, char *err)
{
    json_t      *lines, *svcs, *v, *n;
    const char  *name;
    int          count;

    n = json_object_get(j->payload, "lines");
    count = json_is_integer(n) ? (int) json_integer_value(n) : 100;
    if (count < 1 || count > 10000) {
        count = 100;
    }

    lines = json_array();
    svcs = blueprint_services(t->bp);
    json_object_foreach(svcs, name, v) {
        if (p->driver->ops->logs(p->driver, t->id, name, count, lines) != 0) {
            log_warn("%s/%s: cannot read its log", t->id, name);
        }
    }

    if (job_begin(p) != 0) {
        json_decref(lines);
        return FAILED;
    }
    return task_finish(p, j, json_pack("{s:o}", "lines", lines), err);
}

/* --- certificate ---------------------------------------------------------- */

static enum outcome
do_certificate(struct prov *p, struct job *j, char *err)
{
    json_t  *result;
    int      wait_s = 0;

    switch (acme_certificate(p, j, &result, &wait_s, err, ERRLEN)) {
    case 0:
        return task_finish(p, j, result, err);
    case ACME_DEFER:
        log_info("job %lld: %s", j->id, err);
        job_defer(p, j, wait_s);
        return DEFERRED;
    case ACME_STOP:
        return RELEASE;
    default:
        return FAILED;
    }
}

/* --- dispatch --------------------------------------------------------------- */

static enum outcome
dispatch(struct prov *p, struct job *j, char *err)
{
    struct tenant  t;
    enum outcome   o;
    int            rc;

    if (strcmp(j->kind, "delete") == 0) {
        return do_delete(p, j, err);
    }
    if (strcmp(j->kind, "certificate") == 0) {
        return do_certificate(p, j, err);
    }
    if (strcmp(j->kind, "verify") == 0) {
        return backup_do_verify(p, j, err);
    }

    rc = tenant_load(p, j->tenant, &t, err, ERRLEN);
    if (rc == PROV_NONE) {
        tenant_free(&t);
        if (job_begin(p) != 0) {
            return FAILED;
        }
        return task_finish(p, j, task_skipped("no such tenant"), err);
    }
    if (rc != 0) {
        tenant_free(&t);
        return FAILED;
    }

    if (strcmp(j->kind, "create") == 0) {
        o = do_create(p, j, &t, err);
    } else if (strcmp(j->kind, "suspend") == 0) {
        o = do_suspend(p, j, &t, err);
    } else if (strcmp(j->kind, "resume") == 0) {
        o = do_resume(p, j, &t, err);
    } else if (strcmp(j->kind, "seed_admin") == 0) {
        o = do_seed_admin(p, j, &t, err);
    } else if (strcmp(j->kind, "logs") == 0) {
        o = do_logs(p, j, &t, err);
    } else if (strcmp(j->kind, "backup") == 0) {
        o = backup_do_backup(p, j, &t, err);
    } else if (strcmp(j->kind, "restore") == 0) {
        o = backup_do_restore(p, j, &t, err);
    } else if (strcmp(j->kind, "migrate") == 0) {
        o = fleet_do_migrate(p, j, &t, err);
    } else if (strcmp(j->kind, "webhook") == 0) {
        o = webhook_do_send(p, j, &t, err);
    } else {
        snprintf(err, ERRLEN, "unknown job kind %s", j->kind);
        o = PERMANENT;
    }

    /* a create that fails for good must not leave processes behind */
    if (strcmp(j->kind, "create") == 0
        && (o == PERMANENT
            || (o == FAILED && j->attempts >= j->max_attempts)))
    {
        char why[ERRLEN];

        if (p->driver->ops->remove(p->driver, t.id, why, sizeof(why)) != 0) {
            log_warn("%s: cleanup after a failed create: %s", t.id, why);
        }
    }

    tenant_free(&t);
    return o;
}

void
task_run(struct prov *p, struct job *j)
{
    char          err[ERRLEN] = "";
    enum outcome  o;

    /*
     * Failures stop at max_attempts; a job taken over again and again (a
     * step that outlives every lease, claimers killed mid-step) would
     * not, and is failed here rather than run for ever.
     */
    if (j->attempts > j->max_attempts) {
        snprintf(err, ERRLEN, "claimed %d times, more than its %d attempts "
                 "(a step outlasting the job's lease, or claimers killed "
                 "mid-step; see the provisioner log)", j->attempts,
                 j->max_attempts);
        o = PERMANENT;
    } else {
        o = dispatch(p, j, err);
    }

    switch (o) {
    case DONE:
    case LOST:
    case DEFERRED:
        break;
    case RELEASE:
        job_release(p, j);
        break;
    case FAILED:
    case PERMANENT:
        if (PQtransactionStatus(p->conn) != PQTRANS_IDLE) {
            db_rollback(p->conn);
        }
        job_fail(p, j, err[0] ? err : "unknown error", o == PERMANENT);
        break;
    }
}
