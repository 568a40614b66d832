#define _GNU_SOURCE

/*
 * A tenant's one-off commands: the blueprint's "setup" (a real
 * application's migrations, run once at create, each idempotent so a
 * resumed create runs them again safely) and an admin login made by a
 * command rather than a file. They run as the service they name runs, by
 * the driver's run().
 */

#include "tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETUP_TIMEOUT  600

static void
free_argv(char **argv)
{
    size_t i;

    for (i = 0; argv && argv[i]; i++) {
        free(argv[i]);
    }
    free(argv);
}

/* one command of the blueprint's, rendered, run as svc runs */
static int
run(struct prov *p, struct tenant *t, const char *svc, json_t *cmd,
    char *const *env, int timeout_s, char *err, size_t len)
{
    struct service_spec  s;
    struct tctx          c;
    char               **argv;
    json_t              *v;
    size_t               i;
    int                  rc = -1;

    if (tenant_spec(p, t, svc, &s, err, len) != 0) {
        return -1;
    }
    tenant_context(t, s.port, &c);
    argv = calloc(json_array_size(cmd) + 1, sizeof(char *));
    if (argv == NULL) {
        snprintf(err, len, "out of memory");
        spec_free(&s);
        return -1;
    }
    json_array_foreach(cmd, i, v) {
        argv[i] = template_render(json_string_value(v), &c, err, len);
        if (argv[i] == NULL) {
            goto done;
        }
    }
    rc = p->driver->ops->run(p->driver, &s, argv, env, timeout_s, err, len);

done:
    free_argv(argv);
    spec_free(&s);
    return rc;
}

static int
commands_time(const struct tenant *t, const char *step)
{
    json_t  *setup = json_object_get(t->bp->json, step);
    int      timeout = (int) json_integer_value(json_object_get(setup,
                                                                "timeout"));

    return (int) json_array_size(json_object_get(setup, "commands"))
           * (timeout > 0 ? timeout : SETUP_TIMEOUT) + SETUP_TIMEOUT;
}

int
tenant_setup_time(const struct tenant *t)
{
    return commands_time(t, "setup");
}

int
tenant_migrate_time(const struct tenant *t)
{
    return commands_time(t, "migrate");
}

/* the commands of the blueprint's step ("setup", "migrate"), in order */
static int
run_step(struct prov *p, struct tenant *t, const char *step, char *err,
         size_t len)
{
    json_t      *setup, *cmds, *cmd;
    const char  *svc;
    size_t       i;
    int          timeout;

    setup = json_object_get(t->bp->json, step);
    svc = json_string_value(json_object_get(setup, "service"));
    cmds = json_object_get(setup, "commands");
    timeout = (int) json_integer_value(json_object_get(setup, "timeout"));
    json_array_foreach(cmds, i, cmd) {
        if (run(p, t, svc, cmd, NULL, timeout > 0 ? timeout : SETUP_TIMEOUT,
                err, len) != 0)
        {
            return -1;
        }
    }
    return 0;
}

/* the setup run once into the blueprint's template, the tenant a copy */
static int
from_template(struct prov *p, struct tenant *t, char *err, size_t len)
{
    struct tenant_template  tpl;
    struct tenant           as;
    int                     rc;

    rc = tenant_template_open(p, t, &tpl, err, len);
    if (rc == 0 && tpl.build) {
        rc = tenant_template_as(&tpl, t, &as, err, len);
        if (rc == 0) {
            rc = run_step(p, &as, "setup", err, len);
            tenant_template_as_free(&as);
        }
        if (rc == 0) {
            rc = tenant_template_seal(p, &tpl, err, len);
        }
    }
    tenant_template_close(p, &tpl);

    return rc == 0 ? tenant_template_copy(p, t, &tpl, err, len) : -1;
}

int
tenant_run_setup(struct prov *p, struct tenant *t, char *err, size_t len)
{
    if (json_object_get(t->bp->json, "setup") == NULL) {
        return 0;
    }
    return tenant_db_templated(t) ? from_template(p, t, err, len)
                                  : run_step(p, t, "setup", err, len);
}

/* a fleet migration's step, run for one tenant (fleet.c) */
int
tenant_run_migrate(struct prov *p, struct tenant *t, char *err, size_t len)
{
    if (json_object_get(t->bp->json, "migrate") == NULL) {
        snprintf(err, len, "blueprint %s has no migrate step", t->blueprint);
        return -1;
    }
    return run_step(p, t, "migrate", err, len);
}

int
tenant_run_admin_login(struct prov *p, struct tenant *t, const char *email,
                       const char *password, char *err, size_t len)
{
    json_t  *login = json_object_get(t->bp->json, "admin_login");
    char    *env[3] = { NULL, NULL, NULL };
    int      rc = -1;

    if (email[strcspn(email, "\n\r\t ,;\"\\<>")] != '\0'
        || strchr(email, '@') == NULL)
    {
        snprintf(err, len, "the admin email is not a plain address");
        return -1;
    }
    if (asprintf(&env[0], "ADMIN_EMAIL=%s", email) < 0
        || asprintf(&env[1], "ADMIN_PASSWORD=%s", password) < 0)
    {
        snprintf(err, len, "out of memory");
        env[1] = NULL;
    } else {
        rc = run(p, t, json_string_value(json_object_get(login, "service")),
                 json_object_get(login, "command"), env, SETUP_TIMEOUT, err,
                 len);
    }
    if (env[1] != NULL) {
        explicit_bzero(env[1], strlen(env[1]));
    }
    free(env[0]);
    free(env[1]);
    return rc;
}
