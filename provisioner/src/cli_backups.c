#define _POSIX_C_SOURCE 200809L

/*
 * `provisioner backup|backups|verify|restore|clone|fleet-migrate|migration`:
 * the same SQL functions (migration 016) as the admin API's routes.
 */

#include "cli_backups.h"
#include "actor.h"
#include "cli.h"
#include "db.h"
#include "log.h"
#include "tenant_names.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cli_backup_verbs[] = { "backup", "backups", "verify",
                                        "restore", "clone", "fleet-migrate",
                                        "migration", NULL };

static int
usage(const char *verb, const char *msg, const char *what)
{
    fprintf(stderr, "provisioner %s: %s%s%s\n", verb, what ? what : "",
            what ? ": " : "", msg);
    return EXIT_USAGE;
}

/* a positive decimal id, or NULL */
static const char *
id_arg(const char *s)
{
    char       *end;
    long long   n;

    if (s == NULL) {
        return NULL;
    }
    errno = 0;
    n = strtoll(s, &end, 10);
    return (errno || *end || end == s || n < 1) ? NULL : s;
}

/* a statement's failure said, and its exit code */
static int
refused(PGresult *res, const char *verb, const char *name)
{
    const char *c = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

    if (c && strcmp(c, "tenants_pkey") == 0) {
        fprintf(stderr, "provisioner %s: NEWNAME: a tenant named %s exists\n",
                verb, name);
        return EXIT_CONFLICT;
    }
    if (c && strcmp(c, "jobs_one_pending") == 0) {
        fprintf(stderr, "provisioner %s: a %s job for %s is already queued "
                "or running\n", verb, verb, name);
        return EXIT_CONFLICT;
    }
    if (c && strcmp(c, "fleet_one_open") == 0) {
        fprintf(stderr, "provisioner %s: BLUEPRINT: %s has a migration "
                "running or halted; resume it or let it finish\n", verb,
                name);
        return EXIT_CONFLICT;
    }
    if (c) {
        fprintf(stderr, "provisioner %s: refused by the registry (%s)\n",
                verb, c);
        return EXIT_USAGE;
    }
    log_err("registry: %s", PQresultErrorMessage(res));
    return EXIT_ERROR;
}

/* a state, job, tenant answer of a backup's verify, restore or clone */
static int
backup_job(struct prov *p, const char *verb, const char *id, PGresult *res,
           const char *name, int wait)
{
    const char  *state;
    int          rc;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = refused(res, verb, name);
        PQclear(res);
        return rc;
    }
    state = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)
            ? PQgetvalue(res, 0, 0) : NULL;
    if (state && strcmp(state, "backup") == 0) {
        fprintf(stderr, "provisioner %s: ID: no backup %s (provisioner "
                "backups NAME lists a tenant's)\n", verb, id);
        PQclear(res);
        return EXIT_NOT_FOUND;
    }
    if (state) {
        fprintf(stderr, "provisioner %s: %s\n", verb, state);
        PQclear(res);
        return EXIT_CONFLICT;
    }
    rc = cli_job_answer(p, res, verb, name, wait, 1);
    PQclear(res);
    return rc;
}

static int
backup(struct prov *p, const struct backup_args *a)
{
    const char  *params[4];
    PGresult    *res;
    int          rc;

    if (a->name == NULL) {
        return usage("backup", "a tenant name is required", "NAME");
    }
    params[0] = a->name;
    params[1] = a->verify ? "true" : "false";
    params[2] = NULL;
    params[3] = cli_actor();
    res = PQexecParams(p->conn, "SELECT * FROM tenant_backup($1,"
                       " $2::boolean, $3, $4)", 4, NULL, params, NULL, NULL,
                       0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = refused(res, "backup", a->name);
        PQclear(res);
        return rc;
    }
    rc = cli_job_answer(p, res, "backup", a->name, a->wait, 0);
    PQclear(res);
    return rc;
}

static int
backups(struct prov *p, const struct backup_args *a)
{
    const char  *params[1];
    PGresult    *res;
    json_t      *list, *b;
    size_t       i;

    if (a->name == NULL) {
        return usage("backups", "a tenant name is required", "NAME");
    }
    params[0] = a->name;
    res = db_query(p->conn, "list backups",
                   "SELECT tenant_backups_json($1, 1000)", 1, params);
    if (res == NULL) {
        return EXIT_ERROR;
    }
    list = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);

    printf("%-8s  %-10s  %-10s  %12s  %12s  %-25s  %s\n", "ID", "REASON",
           "VERIFIED", "DB BYTES", "FILE BYTES", "CREATED", "ERROR");
    json_array_foreach(list, i, b) {
        json_t *v = json_object_get(b, "verify");

        printf("%-8lld  %-10s  %-10s  %12lld  %12lld  %-25.25s  %s\n",
               (long long) json_integer_value(json_object_get(b, "id")),
               json_string_value(json_object_get(b, "reason")),
               json_string_value(json_object_get(v, "status")),
               (long long) json_integer_value(json_object_get(b, "db_bytes")),
               (long long) json_integer_value(json_object_get(b,
                                                              "files_bytes")),
               json_string_value(json_object_get(b, "created_at")),
               json_is_string(json_object_get(v, "error"))
               ? json_string_value(json_object_get(v, "error")) : "");
    }
    json_decref(list);
    return EXIT_OK;
}

static int
on_backup(struct prov *p, const char *verb, const struct backup_args *a)
{
    const char  *params[5], *id, *newname = a->arg, *why;
    PGresult    *res;

    id = id_arg(a->name);
    if (id == NULL) {
        return usage(verb, "a backup id (a positive number) is required",
                     "ID");
    }
    if (strcmp(verb, "clone") == 0) {
        if (newname == NULL) {
            return usage(verb, "the new tenant's name is required",
                         "NEWNAME");
        }
        why = tenant_name_check((const unsigned char *) newname,
                                strlen(newname));
        if (why) {
            return usage(verb, why, "NEWNAME");
        }
        params[0] = id;
        params[1] = newname;
        params[2] = a->display_name;
        params[3] = NULL;
        params[4] = cli_actor();
        res = PQexecParams(p->conn, "SELECT * FROM backup_clone($1::bigint,"
                           " $2, $3, $4, $5)", 5, NULL, params, NULL, NULL,
                           0);
        return backup_job(p, verb, id, res, newname, a->wait);
    }
    if (a->arg != NULL) {
        return usage(verb, "unexpected argument", a->arg);
    }
    params[0] = id;
    params[1] = NULL;
    params[2] = cli_actor();
    res = PQexecParams(p->conn, strcmp(verb, "verify") == 0
                       ? "SELECT * FROM backup_verify($1::bigint, $2, $3)"
                       : "SELECT * FROM backup_restore($1::bigint, $2, $3)",
                       3, NULL, params, NULL, NULL, 0);
    return backup_job(p, verb, id, res, id, a->wait);
}

/* state, migration: what is wrong, or the migration */
static int
migration_answer(PGresult *res, const char *verb, const char *name)
{
    const char  *state, *bar;
    int          rc;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = refused(res, verb, name);
        PQclear(res);
        return rc;
    }
    state = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)
            ? PQgetvalue(res, 0, 0) : NULL;
    if (state && strncmp(state, "blueprint|", 10) == 0) {
        bar = strchr(state, '|');
        fprintf(stderr, "provisioner %s: BLUEPRINT: %s\n", verb, bar + 1);
        PQclear(res);
        return EXIT_USAGE;
    }
    if (state && strcmp(state, "migration") == 0) {
        fprintf(stderr, "provisioner %s: ID: no migration %s\n", verb, name);
        PQclear(res);
        return EXIT_NOT_FOUND;
    }
    if (state) {
        fprintf(stderr, "provisioner %s: %s\n", verb, state);
        PQclear(res);
        return EXIT_CONFLICT;
    }
    cli_print_json(PQgetvalue(res, 0, 1));
    PQclear(res);
    return EXIT_OK;
}

static int
migrate(struct prov *p, const struct backup_args *a)
{
    const char  *params[4];
    char         wave[16], fails[16];
    PGresult    *res;

    if (a->name == NULL) {
        return usage("fleet-migrate", "a blueprint name is required", "BLUEPRINT");
    }
    if (a->arg != NULL) {
        return usage("fleet-migrate", "unexpected argument", a->arg);
    }
    snprintf(wave, sizeof(wave), "%d", a->wave);
    snprintf(fails, sizeof(fails), "%d", a->max_failures);
    params[0] = a->name;
    params[1] = wave;
    params[2] = fails;
    params[3] = cli_actor();
    res = PQexecParams(p->conn, "SELECT * FROM fleet_start($1, $2::integer,"
                       " $3::integer, $4)", 4, NULL, params, NULL, NULL, 0);
    return migration_answer(res, "fleet-migrate", a->name);
}

static int
migration(struct prov *p, const struct backup_args *a)
{
    const char  *params[2], *id;
    PGresult    *res;

    id = id_arg(a->name);
    if (id == NULL) {
        return usage("migration", "a migration id (a positive number) is "
                     "required", "ID");
    }
    if (a->arg != NULL) {
        if (strcmp(a->arg, "resume") != 0) {
            return usage("migration", "must be resume, or nothing", a->arg);
        }
        params[0] = id;
        params[1] = cli_actor();
        res = PQexecParams(p->conn, "SELECT * FROM fleet_resume($1::bigint,"
                           " $2)", 2, NULL, params, NULL, NULL, 0);
        return migration_answer(res, "migration", id);
    }
    params[0] = id;
    params[1] = a->status;
    res = db_query(p->conn, "read a migration",
                   "SELECT fleet_detail($1::bigint, $2)", 2, params);
    if (res == NULL) {
        return EXIT_ERROR;
    }
    if (PQgetisnull(res, 0, 0)) {
        PQclear(res);
        fprintf(stderr, "provisioner migration: ID: no migration %s\n", id);
        return EXIT_NOT_FOUND;
    }
    cli_print_json(PQgetvalue(res, 0, 0));
    PQclear(res);
    return EXIT_OK;
}

int
cli_backups(struct prov *p, const char *verb, const struct backup_args *a)
{
    if (a->arg2 != NULL) {
        return usage(verb, "unexpected argument", a->arg2);
    }
    if (strcmp(verb, "backup") == 0) {
        return a->arg ? usage(verb, "unexpected argument", a->arg)
                      : backup(p, a);
    }
    if (strcmp(verb, "backups") == 0) {
        return backups(p, a);
    }
    if (strcmp(verb, "fleet-migrate") == 0) {
        return migrate(p, a);
    }
    if (strcmp(verb, "migration") == 0) {
        return migration(p, a);
    }
    return on_backup(p, verb, a);
}
