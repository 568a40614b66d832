#define _GNU_SOURCE

/*
 * The server's own pg_dump and pg_restore (/usr/lib/postgresql/MAJOR/bin:
 * Debian's /usr/bin wrappers pick a version by cluster, not by server).
 */

#include "pgtool.h"
#include "toolrun.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PGTOOL_TIMEOUT  3600

struct tool_env {
    char   *vars[40];
    size_t  n;
};

static void
env_free(struct tool_env *e)
{
    size_t i;

    for (i = 0; i < e->n; i++) {
        free(e->vars[i]);
    }
    e->n = 0;
}

static int
env_add(struct tool_env *e, const char *name, const char *value)
{
    if (e->n + 1 >= sizeof(e->vars) / sizeof(e->vars[0])
        || asprintf(&e->vars[e->n], "%s=%s", name, value) < 0)
    {
        return -1;
    }
    e->vars[++e->n] = NULL;
    return 0;
}

/* the registry's conninfo as PG* variables, database db */
static int
env_make(struct prov *p, const char *db, struct tool_env *e, char *err,
         size_t len)
{
    PQconninfoOption  *opts, *o;
    char              *why = NULL;
    int                rc = 0;

    e->n = 0;
    e->vars[0] = NULL;

    opts = PQconninfoParse(p->conf.db, &why);
    if (opts == NULL) {
        snprintf(err, len, "db: cannot parse the conninfo: %s",
                 why ? why : "out of memory");
        PQfreemem(why);
        return -1;
    }
    for (o = opts; o->keyword && rc == 0; o++) {
        if (o->val == NULL || o->val[0] == '\0' || o->envvar == NULL
            || strcmp(o->keyword, "dbname") == 0)
        {
            continue;
        }
        rc = env_add(e, o->envvar, o->val);
    }
    PQconninfoFree(opts);

    if (rc != 0
        || env_add(e, "PATH", "/usr/bin:/bin") != 0
        || env_add(e, "PGDATABASE", db) != 0
        || env_add(e, "PGAPPNAME", "ngx_tenant-backup") != 0
        || env_add(e, "PGCONNECT_TIMEOUT", "10") != 0)
    {
        env_free(e);
        snprintf(err, len, "out of memory");
        return -1;
    }
    return 0;
}

static void
tool_path(struct prov *p, const char *tool, char *out, size_t len)
{
    int major = PQserverVersion(p->conn) / 10000;

    snprintf(out, len, "/usr/lib/postgresql/%d/bin/%s", major, tool);
    if (major == 0 || access(out, X_OK) != 0) {
        snprintf(out, len, "/usr/bin/%s", tool);
    }
}

static int
run_tool(struct prov *p, const char *db, char **argv, int out, char *err,
         size_t len)
{
    struct tool_env  e;
    struct toolrun     s;
    int              rc;

    if (env_make(p, db, &e, err, len) != 0) {
        return -1;
    }
    memset(&s, 0, sizeof(s));
    s.argv = argv;
    s.envp = e.vars;
    s.in = -1;
    s.out = out;
    s.timeout = PGTOOL_TIMEOUT;
    s.stop = p->stop;

    rc = toolrun(&s, err, len);
    env_free(&e);
    return rc;
}

int
pgtool_dump(struct prov *p, const char *db, const char *role,
            const char *snapshot, const char *out, char *err, size_t len)
{
    char   tool[128], role_opt[100], snap_opt[100], file_opt[1100];
    char  *argv[9];

    tool_path(p, "pg_dump", tool, sizeof(tool));
    snprintf(role_opt, sizeof(role_opt), "--role=%s", role);
    snprintf(snap_opt, sizeof(snap_opt), "--snapshot=%s", snapshot);
    snprintf(file_opt, sizeof(file_opt), "--file=%s", out);

    argv[0] = tool;
    argv[1] = "--format=custom";
    argv[2] = "--no-password";
    argv[3] = role_opt;
    argv[4] = snap_opt;
    argv[5] = file_opt;
    argv[6] = "--compress=6";
    argv[7] = NULL;

    return run_tool(p, db, argv, -1, err, len);
}

int
pgtool_restore(struct prov *p, const char *db, const char *role,
               const char *in, char *err, size_t len)
{
    char   tool[128], role_opt[100], db_opt[100];
    char  *argv[10];

    tool_path(p, "pg_restore", tool, sizeof(tool));
    snprintf(role_opt, sizeof(role_opt), "--role=%s", role);
    snprintf(db_opt, sizeof(db_opt), "--dbname=%s", db);

    /* owned by the role it runs as; one transaction: all or nothing */
    argv[0] = tool;
    argv[1] = "--no-password";
    argv[2] = role_opt;
    argv[3] = db_opt;
    argv[4] = "--no-owner";
    argv[5] = "--single-transaction";
    argv[6] = "--exit-on-error";
    argv[7] = (char *) in;
    argv[8] = NULL;

    return run_tool(p, db, argv, -1, err, len);
}

int
pgtool_list(struct prov *p, const char *in, char *err, size_t len)
{
    char   tool[128];
    char  *argv[4];

    tool_path(p, "pg_restore", tool, sizeof(tool));
    argv[0] = tool;
    argv[1] = "--list";
    argv[2] = (char *) in;
    argv[3] = NULL;

    return run_tool(p, "postgres", argv, -1, err, len);
}
