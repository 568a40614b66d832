#define _POSIX_C_SOURCE 200809L

/*
 * `provisioner limits` and `provisioner plans`: a tenant's traffic limits
 * and the plans, with the same SQL functions (migration 012) and the same
 * ranges (common/tenant_limits.c) as the admin API.  `set` replaces them
 * all, as PUT does: an option left out is no limit of that kind.
 */

#include "cli_limits.h"
#include "actor.h"
#include "cli.h"
#include "db.h"
#include "tenant_limits.h"
#include "tenant_names.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
usage(const char *verb, const char *msg, const char *what)
{
    fprintf(stderr, "provisioner %s: %s%s%s\n", verb, what ? what : "",
            what ? ": " : "", msg);
    return EXIT_USAGE;
}

static void
print_value(PGresult *res)
{
    json_t *v = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    char   *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

    printf("%s\n", s ? s : PQgetvalue(res, 0, 0));
    free(s);
    json_decref(v);
}

/*
 * --rate, --burst, --connections, --monthly-requests, --monthly-bytes
 * (and --plan for a tenant) into a JSON object; an error names the option.
 */
static int
parse_set(const char *verb, int with_plan, int argc, char **argv,
          json_t *out)
{
    char                    opt[48], *end;
    const char             *why;
    double                  v;
    int                     i;
    size_t                  k;
    const tenant_limit_t   *l;

    for (i = 0; i < argc; i += 2) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strncmp(a, "--", 2) != 0) {
            return usage(verb, "unexpected argument", a);
        }
        if (val == NULL) {
            return usage(verb, "needs a value", a);
        }
        if (with_plan && strcmp(a, "--plan") == 0) {
            why = tenant_slug_check((const unsigned char *) val,
                                    strlen(val));
            if (why) {
                return usage(verb, why, a);
            }
            json_object_set_new(out, "plan", json_string(val));
            continue;
        }

        /* --monthly-requests is the field monthly_requests */
        if (strlen(a + 2) >= sizeof(opt)) {
            return usage(verb, "unknown option", a);
        }
        strcpy(opt, a + 2);
        for (k = 0; opt[k]; k++) {
            if (opt[k] == '-') {
                opt[k] = '_';
            }
        }
        l = tenant_limit_find(opt);
        if (l == NULL) {
            return usage(verb, with_plan
                         ? "unknown option (--rate, --burst, --connections, "
                           "--monthly-requests, --monthly-bytes, --plan)"
                         : "unknown option (--rate, --burst, --connections, "
                           "--monthly-requests, --monthly-bytes)", a);
        }

        errno = 0;
        v = strtod(val, &end);
        why = (errno || end == val || *end) ? l->why
                                            : tenant_limit_check(l, v);
        if (why) {
            return usage(verb, why, a);
        }
        json_object_set_new(out, l->name, l->integer
                            ? json_integer((json_int_t) v) : json_real(v));
    }
    return 0;
}

/*
 * The options after "set" as the SQL functions' jsonb, in *text (the
 * caller's to free): 0, or the exit code once the error is said.
 */
static int
set_text(const char *verb, int with_plan, int argc, char **argv, char **text)
{
    json_t *doc;
    int     rc;

    *text = NULL;
    doc = json_object();
    if (doc == NULL) {
        fprintf(stderr, "provisioner %s: out of memory\n", verb);
        return EXIT_ERROR;
    }
    rc = parse_set(verb, with_plan, argc, argv, doc);
    if (rc == 0) {
        *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12));
        if (*text == NULL) {
            fprintf(stderr, "provisioner %s: out of memory\n", verb);
            rc = EXIT_ERROR;
        }
    }
    json_decref(doc);
    return rc;
}

/* the answer of a set: printed, or what it refused said */
static int
set_answer(PGresult *res, const char *tenant)
{
    json_t *v;
    int     rc = EXIT_OK;

    if (res == NULL) {
        return EXIT_ERROR;
    }
    v = PQgetisnull(res, 0, 0) ? NULL
                               : json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    if (PQgetisnull(res, 0, 0)) {
        fprintf(stderr, "provisioner limits: no tenant named %s\n", tenant);
        rc = EXIT_NOT_FOUND;
    } else if (json_object_get(v, "error") != NULL) {
        fprintf(stderr, "provisioner limits: --plan: no plan has this name "
                "(make it with: provisioner plans set NAME ...)\n");
        rc = EXIT_NOT_FOUND;
    } else {
        print_value(res);
    }
    json_decref(v);
    PQclear(res);
    return rc;
}

static int
tenant_limits_cmd(struct prov *p, int argc, char **argv)
{
    const char  *params[3];
    const char  *why;
    PGresult    *res;
    char        *text;
    int          rc;

    if (argc < 1) {
        return usage("limits", "missing", "NAME");
    }
    why = tenant_name_check((const unsigned char *) argv[0], strlen(argv[0]));
    if (why) {
        return usage("limits", why, "NAME");
    }
    params[0] = argv[0];

    if (argc == 1) {
        res = db_query(p->conn, "read limits",
                       "SELECT tenant_limits_json(t) FROM tenants t"
                       " WHERE id = $1", 1, params);
        if (res == NULL) {
            return EXIT_ERROR;
        }
        if (PQntuples(res) != 1) {
            PQclear(res);
            fprintf(stderr, "provisioner limits: no tenant named %s\n",
                    argv[0]);
            return EXIT_NOT_FOUND;
        }
        print_value(res);
        PQclear(res);
        return EXIT_OK;
    }

    if (strcmp(argv[1], "set") != 0) {
        return usage("limits", "expected set, or nothing to show them",
                     argv[1]);
    }

    rc = set_text("limits", 1, argc - 2, argv + 2, &text);
    if (rc) {
        return rc;
    }
    params[1] = text;
    params[2] = cli_actor();
    res = db_query(p->conn, "set limits",
                   "SELECT tenant_set_limits($1, $2::jsonb, $3)", 3, params);
    free(text);
    return set_answer(res, argv[0]);
}

static int
plans_cmd(struct prov *p, int argc, char **argv)
{
    const char  *params[3];
    const char  *why;
    PGresult    *res;
    char        *text;
    int          rc;

    if (argc == 0) {
        res = db_query(p->conn, "list plans", "SELECT plans_json()", 0,
                       NULL);
        if (res == NULL) {
            return EXIT_ERROR;
        }
        print_value(res);
        PQclear(res);
        return EXIT_OK;
    }

    if (strcmp(argv[0], "set") != 0) {
        return usage("plans", "expected set NAME, or nothing to list them",
                     argv[0]);
    }
    if (argc < 2) {
        return usage("plans", "missing", "NAME");
    }
    why = tenant_slug_check((const unsigned char *) argv[1], strlen(argv[1]));
    if (why) {
        return usage("plans", why, "NAME");
    }

    rc = set_text("plans", 0, argc - 2, argv + 2, &text);
    if (rc) {
        return rc;
    }

    params[0] = argv[1];
    params[1] = text;
    params[2] = cli_actor();
    res = db_query(p->conn, "set plan", "SELECT plan_set($1, $2::jsonb, $3)",
                   3, params);
    free(text);
    return set_answer(res, argv[1]);
}

int
cli_limits(struct prov *p, const char *verb, int argc, char **argv)
{
    return strcmp(verb, "plans") == 0 ? plans_cmd(p, argc, argv)
                                      : tenant_limits_cmd(p, argc, argv);
}
