#define _POSIX_C_SOURCE 200809L

/*
 * CLI verbs. They write jobs with the same SQL functions as the admin API
 * (migration 004), so a job made here is exactly one made over HTTP.
 */

#include "cli.h"
#include "db.h"
#include "log.h"
#include "tenant_names.h"
#include "cli_certs.h"
#include "cli_limits.h"
#include "cli_users.h"
#include "cli_backups.h"
#include "actor.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct opts {
    const char *name;
    const char *args[2];   /* positional arguments after NAME */
    const char *email;
    const char *password;
    const char *role;
    const char *tenant;
    const char *status;
    int         limit;
    const char *blueprint;
    const char *theme;
    const char *mode;
    const char *display_name;
    const char *idem;
    const char *cert;
    const char *key;
    int         days;
    int         wait;      /* seconds; 0: do not wait */
    int         lines;
    int         no_verify;
    int         wave;
    int         max_failures;
};

static const char *const verbs[] = { "create", "delete", "suspend", "resume",
                                     "list", "logs", "health", "show",
                                     "seed-admin", "domains", "jobs",
                                     "certs", "limits", "plans", "users",
                                     NULL };

static int
in_list(const char *const *list, const char *verb)
{
    const char *const *v;

    for (v = list; *v; v++) {
        if (strcmp(*v, verb) == 0) {
            return 1;
        }
    }
    return 0;
}

int
cli_is_verb(const char *verb)
{
    return in_list(verbs, verb) || in_list(cli_backup_verbs, verb);
}

static int
usage_error(const char *verb, const char *msg, const char *what)
{
    fprintf(stderr, "provisioner %s: %s%s%s\n", verb, what ? what : "",
            what ? ": " : "", msg);
    return EXIT_USAGE;
}

static int
int_arg(const char *s, int lo, int hi, int *out)
{
    char *end;
    long  n;

    errno = 0;
    n = strtol(s, &end, 10);
    if (errno || *end || n < lo || n > hi) {
        return -1;
    }
    *out = (int) n;
    return 0;
}

/* the options that take a value: a string, or a number in a range */
static const struct {
    const char  *name;
    size_t       offset;
    int          lo, hi;    /* hi 0: a string */
} options[] = {
    { "--blueprint", offsetof(struct opts, blueprint), 0, 0 },
    { "--theme", offsetof(struct opts, theme), 0, 0 },
    { "--mode", offsetof(struct opts, mode), 0, 0 },
    { "--display-name", offsetof(struct opts, display_name), 0, 0 },
    { "--idempotency-key", offsetof(struct opts, idem), 0, 0 },
    { "--email", offsetof(struct opts, email), 0, 0 },
    { "--password", offsetof(struct opts, password), 0, 0 },
    { "--role", offsetof(struct opts, role), 0, 0 },
    { "--tenant", offsetof(struct opts, tenant), 0, 0 },
    { "--status", offsetof(struct opts, status), 0, 0 },
    { "--lines", offsetof(struct opts, lines), 1, 10000 },
    { "--limit", offsetof(struct opts, limit), 1, 100 },
    { "--cert", offsetof(struct opts, cert), 0, 0 },
    { "--key", offsetof(struct opts, key), 0, 0 },
    { "--days", offsetof(struct opts, days), 0, 36500 },
    { "--wave", offsetof(struct opts, wave), 1, 1000 },
    { "--max-failures", offsetof(struct opts, max_failures), 0, 1000000 },
    { NULL, 0, 0, 0 }
};

static int
parse(const char *verb, int argc, char **argv, struct opts *o)
{
    char  msg[32];
    int   i, k;

    memset(o, 0, sizeof(*o));
    o->lines = 100;
    o->limit = 50;
    o->days = 30;
    o->wave = 10;

    for (i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--wait") == 0) {
            o->wait = 120;
            if (v && v[0] != '-' && int_arg(v, 1, 3600, &o->wait) == 0) {
                i++;
            }
            continue;
        }
        if (strcmp(a, "--no-verify") == 0) {
            o->no_verify = 1;
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            for (k = 0; options[k].name; k++) {
                if (strcmp(a, options[k].name) == 0) {
                    break;
                }
            }
            if (options[k].name == NULL) {
                return usage_error(verb, "unknown option", a);
            }
            if (v == NULL) {
                return usage_error(verb, "needs a value", a);
            }
            if (options[k].hi == 0) {
                *(const char **) ((char *) o + options[k].offset) = v;
            } else if (int_arg(v, options[k].lo, options[k].hi,
                               (int *) ((char *) o + options[k].offset))
                       != 0)
            {
                snprintf(msg, sizeof(msg), "must be %d-%d", options[k].lo,
                         options[k].hi);
                return usage_error(verb, msg, a);
            }
            i++;
            continue;
        }
        if (o->name == NULL) {
            o->name = a;
        } else if (o->args[0] == NULL) {
            o->args[0] = a;
        } else if (o->args[1] == NULL) {
            o->args[1] = a;
        } else {
            return usage_error(verb, "unexpected argument", a);
        }
    }
    return 0;
}

static int
mutate(struct prov *p, const char *verb, const struct opts *o)
{
    const char *params[9], *sql, *why, *constraint;
    PGresult   *res;
    int         n, create, rc;

    create = strcmp(verb, "create") == 0;

    if (o->name == NULL) {
        return usage_error(verb, "a tenant name is required", "NAME");
    }
    if (create
        && (why = tenant_name_check((const unsigned char *) o->name,
                                     strlen(o->name))) != NULL)
    {
        return usage_error(verb, why, "NAME");
    }
    if (create && o->blueprint == NULL) {
        return usage_error(verb, "is required", "--blueprint");
    }

    if (create) {
        params[0] = o->name;
        params[1] = o->blueprint;
        params[2] = o->theme ? o->theme : "default";
        params[3] = o->mode ? o->mode : "dedicated";
        params[4] = o->display_name ? o->display_name : o->name;
        params[5] = o->idem;
        params[6] = cli_actor();
        params[7] = "0";    /* the operator's shell is not rate-limited */
        params[8] = "60";
        n = 9;
        sql = "SELECT * FROM tenant_create($1, $2, $3, $4, $5, $6, $7,"
              " $8::integer, $9::integer)";
    } else {
        params[0] = o->name;
        params[1] = o->idem;
        params[2] = cli_actor();
        n = 3;
        sql = strcmp(verb, "delete") == 0
              ? "SELECT * FROM tenant_delete($1, $2, $3)"
              : strcmp(verb, "suspend") == 0
              ? "SELECT * FROM tenant_suspend($1, $2, $3)"
              : "SELECT * FROM tenant_resume($1, $2, $3)";
    }

    res = PQexecParams(p->conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        if (constraint && strcmp(constraint, "tenants_pkey") == 0) {
            fprintf(stderr, "provisioner %s: a tenant named %s exists\n",
                    verb, o->name);
            rc = EXIT_CONFLICT;
        } else if (constraint && strcmp(constraint, "jobs_one_pending") == 0)
        {
            fprintf(stderr, "provisioner %s: a %s job for %s is already "
                    "queued or running\n", verb, verb, o->name);
            rc = EXIT_CONFLICT;
        } else if (constraint) {
            fprintf(stderr, "provisioner %s: refused by the registry (%s)\n",
                    verb, constraint);
            rc = EXIT_USAGE;
        } else {
            log_err("registry: %s", PQresultErrorMessage(res));
            rc = EXIT_ERROR;
        }
        PQclear(res);
        return rc;
    }

    rc = cli_job_answer(p, res, verb, o->name, o->wait, create);
    PQclear(res);
    return rc;
}

static int
list(struct prov *p)
{
    PGresult *res;
    int       i;

    res = db_query(p->conn, "list tenants",
                   "SELECT id, status, blueprint, theme, mode,"
                   "       to_char(created_at, 'YYYY-MM-DD HH24:MI:SS')"
                   "  FROM tenants ORDER BY id", 0, NULL);
    if (res == NULL) {
        return EXIT_ERROR;
    }
    printf("%-30s  %-12s  %-12s  %-12s  %-9s  %s\n", "NAME", "STATUS",
           "BLUEPRINT", "THEME", "MODE", "CREATED");
    for (i = 0; i < PQntuples(res); i++) {
        printf("%-30s  %-12s  %-12s  %-12s  %-9s  %s\n",
               PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
               PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
               PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
    }
    PQclear(res);
    return EXIT_OK;
}

static int
logs(struct prov *p, const struct opts *o)
{
    char        lines[16];
    const char *params[3] = { o->name, lines, cli_actor() };
    PGresult   *res;
    json_t     *job, *res_lines, *l;
    char        id[32];
    size_t      i;
    int         rc;

    if (o->name == NULL) {
        return usage_error("logs", "a tenant name is required", "NAME");
    }
    snprintf(lines, sizeof(lines), "%d", o->lines);

    res = db_query(p->conn, "ask for logs",
                   "SELECT * FROM tenant_logs($1, $2::int, $3, 0)", 3, params);
    if (res == NULL) {
        return EXIT_ERROR;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 1)) {
        PQclear(res);
        fprintf(stderr, "provisioner logs: no tenant named %s\n", o->name);
        return EXIT_NOT_FOUND;
    }
    job = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    snprintf(id, sizeof(id), "%lld",
             (long long) json_integer_value(json_object_get(job, "id")));
    json_decref(job);
    PQclear(res);

    /* the provisioner answers the job; print its lines, not the JSON */
    rc = cli_wait_job(p, id, o->wait ? o->wait : 10, &job);
    res_lines = json_object_get(json_object_get(job, "result"), "lines");
    json_array_foreach(res_lines, i, l) {
        printf("%s %s | %s\n",
               json_string_value(json_object_get(l, "service")),
               json_is_string(json_object_get(l, "at"))
               ? json_string_value(json_object_get(l, "at")) : "-",
               json_string_value(json_object_get(l, "line")));
    }
    json_decref(job);
    return rc;
}


static int
health(struct prov *p)
{
    PGresult *res;

    res = db_query(p->conn, "read health",
                   "SELECT (SELECT max(version) FROM schema_version),"
                   "  (SELECT count(*) FROM jobs WHERE status = 'queued'),"
                   "  (SELECT count(*) FROM jobs WHERE status = 'running'),"
                   "  (SELECT count(*) FROM jobs WHERE status = 'failed'),"
                   "  (SELECT count(*) FROM tenants),"
                   "  (SELECT count(*) FROM tenants WHERE status = 'active'),"
                   "  (SELECT count(*) FROM blueprints)", 0, NULL);
    if (res == NULL) {
        printf("registry: unavailable\n");
        return EXIT_ERROR;
    }
    printf("registry: ok (schema %s)\njobs: %s queued, %s running, %s failed\n"
           "tenants: %s (%s active)\nblueprints: %s\n",
           PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
           PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3),
           PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 5),
           PQgetvalue(res, 0, 6));
    PQclear(res);
    return EXIT_OK;
}

/* --- reading and the mutations beside create/delete/suspend/resume --- */

static int
show(struct prov *p, const struct opts *o)
{
    const char *params[1] = { o->name };
    PGresult   *res;

    if (o->name == NULL) {
        return usage_error("show", "a tenant name is required", "NAME");
    }
    res = db_query(p->conn, "read the tenant", "SELECT tenant_detail($1)", 1,
                   params);
    if (res == NULL) {
        return EXIT_ERROR;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        PQclear(res);
        fprintf(stderr, "provisioner show: no tenant named %s\n", o->name);
        return EXIT_NOT_FOUND;
    }
    cli_print_json(PQgetvalue(res, 0, 0));
    PQclear(res);
    return EXIT_OK;
}

/* what goes into the admin's login file must be an address, no more */
static const char *
email_check(const char *e)
{
    const char *at = strchr(e, '@');
    size_t      n = strlen(e), i;

    if (n < 3 || n > 254) {
        return "must be 3-254 characters";
    }
    if (at == NULL || at == e || strchr(at + 1, '@') != NULL
        || strchr(at + 1, '.') == NULL)
    {
        return "must be one address like owner@example.com";
    }
    for (i = 0; i < n; i++) {
        if ((unsigned char) e[i] <= 0x20 || e[i] == 0x7f || e[i] == ':') {
            return "must not contain spaces, control characters or ':'";
        }
    }
    return NULL;
}

static int
seed_admin(struct prov *p, const struct opts *o)
{
    const char *params[5], *why;
    PGresult   *res;
    size_t      n;
    int         rc;

    if (o->name == NULL) {
        return usage_error("seed-admin", "a tenant name is required", "NAME");
    }
    if (o->email == NULL) {
        return usage_error("seed-admin", "is required", "--email");
    }
    if ((why = email_check(o->email)) != NULL) {
        return usage_error("seed-admin", why, "--email");
    }
    if (o->password == NULL) {
        return usage_error("seed-admin", "is required", "--password");
    }
    n = strlen(o->password);
    if (n < 10 || n > 128) {
        return usage_error("seed-admin", "must be 10-128 characters",
                           "--password");
    }

    params[0] = o->name;
    params[1] = o->email;
    params[2] = o->password;
    params[3] = o->idem;
    params[4] = cli_actor();
    res = db_query(p->conn, "queue seed-admin",
                   "SELECT * FROM tenant_seed_admin($1, $2, $3, $4, $5)", 5,
                   params);
    if (res == NULL) {
        return EXIT_ERROR;
    }
    rc = cli_job_answer(p, res, "seed-admin", o->name, o->wait, 0);
    PQclear(res);
    return rc;
}

static int
domains(struct prov *p, const struct opts *o)
{
    const char *params[4], *sub = o->args[0];
    PGresult   *res;
    int         i, rc;

    if (o->name == NULL) {
        return usage_error("domains", "a tenant name is required", "NAME");
    }

    if (sub == NULL) {
        params[0] = o->name;
        res = db_query(p->conn, "list domains",
                       "SELECT h.host, h.role FROM tenants t"
                       "  LEFT JOIN tenant_hosts h ON h.tenant_id = t.id"
                       " WHERE t.id = $1 ORDER BY h.host", 1, params);
        if (res == NULL) {
            return EXIT_ERROR;
        }
        if (PQntuples(res) == 0) {
            PQclear(res);
            fprintf(stderr, "provisioner domains: no tenant named %s\n",
                    o->name);
            return EXIT_NOT_FOUND;
        }
        for (i = 0; i < PQntuples(res); i++) {
            if (!PQgetisnull(res, i, 0)) {
                printf("%s %s\n", PQgetvalue(res, i, 0),
                       PQgetvalue(res, i, 1));
            }
        }
        PQclear(res);
        return EXIT_OK;
    }

    if (strcmp(sub, "add") != 0 && strcmp(sub, "remove") != 0) {
        return usage_error("domains", "must be add or remove", sub);
    }
    if (o->args[1] == NULL) {
        return usage_error("domains", "a host is required", "HOST");
    }
    if (o->role && strcmp(o->role, "site") != 0
        && strcmp(o->role, "admin") != 0)
    {
        return usage_error("domains", "must be site or admin", "--role");
    }

    params[0] = o->name;
    params[1] = o->args[1];
    if (strcmp(sub, "add") == 0) {
        params[2] = o->role ? o->role : "site";
        params[3] = cli_actor();
        res = PQexecParams(p->conn,
                           "SELECT * FROM tenant_domain_add($1, $2, $3, $4)",
                           4, NULL, params, NULL, NULL, 0);
    } else {
        params[2] = cli_actor();
        res = PQexecParams(p->conn,
                           "SELECT * FROM tenant_domain_remove($1, $2, $3)",
                           3, NULL, params, NULL, NULL, 0);
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *c = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

        if (c && strcmp(c, "tenant_hosts_pkey") == 0) {
            fprintf(stderr, "provisioner domains: HOST: %s is already in "
                    "use\n", o->args[1]);
            rc = EXIT_CONFLICT;
        } else if (c) {
            fprintf(stderr, "provisioner domains: HOST: refused by the "
                    "registry (%s): must be a host name like "
                    "shop.example.com\n", c);
            rc = EXIT_USAGE;
        } else {
            log_err("registry: %s", PQresultErrorMessage(res));
            rc = EXIT_ERROR;
        }
        PQclear(res);
        return rc;
    }

    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        fprintf(stderr, "provisioner domains: no tenant named %s\n", o->name);
        rc = EXIT_NOT_FOUND;
    } else if (PQgetisnull(res, 0, 1)) {
        fprintf(stderr, strcmp(sub, "add") == 0
                ? "provisioner domains: %s is being deleted\n"
                : "provisioner domains: %s has no such domain\n", o->name);
        rc = strcmp(sub, "add") == 0 ? EXIT_CONFLICT : EXIT_NOT_FOUND;
    } else {
        cli_print_json(PQgetvalue(res, 0, 1));
        rc = EXIT_OK;
    }
    PQclear(res);
    return rc;
}

static int
jobs(struct prov *p, const struct opts *o)
{
    char        limit[16];
    const char *params[3];
    PGresult   *res;
    json_t     *page, *j;
    size_t      i;

    if (o->name != NULL) {
        return usage_error("jobs", "unexpected argument (use --tenant)",
                           o->name);
    }
    if (o->status && strcmp(o->status, "queued") != 0
        && strcmp(o->status, "running") != 0
        && strcmp(o->status, "done") != 0 && strcmp(o->status, "failed") != 0)
    {
        return usage_error("jobs", "must be queued, running, done or failed",
                           "--status");
    }
    snprintf(limit, sizeof(limit), "%d", o->limit);
    params[0] = o->tenant;
    params[1] = o->status;
    params[2] = limit;

    res = db_query(p->conn, "list jobs",
                   "SELECT page FROM job_list($1, $2, NULL, $3::int)", 3,
                   params);
    if (res == NULL) {
        return EXIT_ERROR;
    }
    page = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);

    printf("%-8s  %-10s  %-30s  %-8s  %-8s  %s\n", "ID", "KIND", "TENANT",
           "STATUS", "ATTEMPTS", "ERROR");
    json_array_foreach(page, i, j) {
        printf("%-8lld  %-10s  %-30s  %-8s  %-8lld  %s\n",
               (long long) json_integer_value(json_object_get(j, "id")),
               json_string_value(json_object_get(j, "kind")),
               json_is_string(json_object_get(j, "tenant"))
               ? json_string_value(json_object_get(j, "tenant")) : "-",
               json_string_value(json_object_get(j, "status")),
               (long long) json_integer_value(json_object_get(j, "attempts")),
               json_is_string(json_object_get(j, "error"))
               ? json_string_value(json_object_get(j, "error")) : "");
    }
    json_decref(page);
    return EXIT_OK;
}

int
cli_main(struct prov *p, const char *verb, int argc, char **argv)
{
    struct opts o;
    int         rc;

    if (strcmp(verb, "limits") == 0 || strcmp(verb, "plans") == 0) {
        return cli_limits(p, verb, argc, argv);
    }

    if (strcmp(verb, "users") == 0) {
        return cli_users(p, argc, argv);
    }

    rc = parse(verb, argc, argv, &o);
    if (rc != 0) {
        return rc;
    }

    if (strcmp(verb, "list") == 0) {
        return list(p);
    }
    if (strcmp(verb, "logs") == 0) {
        return logs(p, &o);
    }
    if (strcmp(verb, "health") == 0) {
        return health(p);
    }
    if (strcmp(verb, "show") == 0) {
        return show(p, &o);
    }
    if (strcmp(verb, "seed-admin") == 0) {
        return seed_admin(p, &o);
    }
    if (strcmp(verb, "domains") == 0) {
        return domains(p, &o);
    }
    if (strcmp(verb, "jobs") == 0) {
        return jobs(p, &o);
    }
    if (in_list(cli_backup_verbs, verb)) {
        struct backup_args a = { o.name, o.args[0], o.args[1],
                                 o.display_name, o.status, o.wait,
                                 !o.no_verify, o.wave, o.max_failures };

        return cli_backups(p, verb, &a);
    }
    if (strcmp(verb, "certs") == 0) {
        struct cert_args a = { o.name, o.args[0], o.args[1], o.cert, o.key,
                               o.days };

        return cli_certs(p, &a);
    }
    if (o.args[0] != NULL) {
        return usage_error(verb, "unexpected argument", o.args[0]);
    }
    return mutate(p, verb, &o);
}
