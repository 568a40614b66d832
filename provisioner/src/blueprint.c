#define _DEFAULT_SOURCE

#include "blueprint.h"
#include "db.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A blueprint (see blueprints/README.md):
 * { "name", "description", "drivers": [...], "modes": [...], "themes": [...],
 *   "database": bool, "roles": {"site": svc, "admin": svc},
 *   "shared": {"site": "ip:port", "admin": "ip:port"},
 *   "admin_login": {"file": path, "line": template, "service": svc},
 *   "services": { name: { "command": [...], "image": str, "env": {...},
 *     "health": {"path": "/", "timeout": s}, "resources": {"memory_mb": n,
 *     "cpus": x}, "files": {dest: src} } } }
 */

static int
fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

static int
is_slug(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 64) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || ((s[i] == '-' || s[i] == '_') && i > 0)))
        {
            return 0;
        }
    }
    return 1;
}

/* a relative path inside the tenant's or the blueprint's directory */
static int
is_safe_path(const char *s)
{
    const char *p;

    if (*s == '\0' || *s == '/' || strlen(s) > 255) {
        return 0;
    }
    for (p = s; *p; p++) {
        if ((unsigned char) *p < 0x20) {
            return 0;
        }
    }
    return strcmp(s, "..") != 0 && strncmp(s, "../", 3) != 0
           && strstr(s, "/../") == NULL
           && !(strlen(s) >= 3 && strcmp(s + strlen(s) - 3, "/..") == 0);
}

static int
only_keys(json_t *obj, const char *const *allowed, const char *where,
          char *err, size_t len)
{
    const char         *key;
    json_t             *v;
    const char *const  *a;

    json_object_foreach(obj, key, v) {
        for (a = allowed; *a; a++) {
            if (strcmp(*a, key) == 0) {
                break;
            }
        }
        if (*a == NULL) {
            return fail(err, len, "%s%s%s: unknown field", where,
                        *where ? "." : "", key);
        }
    }
    return 0;
}

static int
string_list(json_t *root, const char *field, const char *const *choices,
            int slugs, char *err, size_t len)
{
    json_t             *a = json_object_get(root, field), *v;
    size_t              i;
    const char *const  *c;

    if (!json_is_array(a) || json_array_size(a) == 0) {
        return fail(err, len, "%s: must be a non-empty array of strings",
                    field);
    }

    json_array_foreach(a, i, v) {
        if (!json_is_string(v)) {
            return fail(err, len, "%s[%zu]: must be a string", field, i);
        }
        if (slugs && !is_slug(json_string_value(v))) {
            return fail(err, len, "%s[%zu]: must be 1-64 of a-z, 0-9, _ "
                        "and -", field, i);
        }
        if (choices) {
            for (c = choices; *c; c++) {
                if (strcmp(*c, json_string_value(v)) == 0) {
                    break;
                }
            }
            if (*c == NULL) {
                return fail(err, len, "%s[%zu]: unknown value \"%s\"", field,
                            i, json_string_value(v));
            }
        }
    }
    return 0;
}

static int
is_address(const char *s)
{
    regex_t re;
    int     ok;

    if (regcomp(&re, "^(unix:/[^[:space:]]{1,100}|[0-9]{1,3}(\\.[0-9]{1,3}){3}"
                ":[0-9]{1,5})$", REG_EXTENDED | REG_NOSUB) != 0)
    {
        return 0;
    }
    ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static int
check_service(const char *name, json_t *svc, int process, int docker,
              char *err, size_t len)
{
    static const char *const keys[] = { "command", "image", "env", "health",
                                        "resources", "files", "links",
                                        "placement", NULL };
    static const char *const hkeys[] = { "path", "timeout", NULL };
    static const char *const rkeys[] = { "memory_mb", "cpus", NULL };
    char                     where[128];
    json_t                  *v, *e;
    const char              *k;
    size_t                   i;

    snprintf(where, sizeof(where), "services.%s", name);

    if (!is_slug(name)) {
        return fail(err, len, "%s: service names are 1-64 of a-z, 0-9, _ "
                    "and -", where);
    }
    if (!json_is_object(svc)) {
        return fail(err, len, "%s: must be an object", where);
    }
    if (only_keys(svc, keys, where, err, len) != 0) {
        return -1;
    }

    v = json_object_get(svc, "command");
    if (process && !json_is_array(v)) {
        return fail(err, len, "%s.command: required by the process driver",
                    where);
    }
    if (v) {
        if (!json_is_array(v) || json_array_size(v) == 0
            || json_array_size(v) > 64)
        {
            return fail(err, len, "%s.command: must be an array of 1-64 "
                        "strings", where);
        }
        json_array_foreach(v, i, e) {
            if (!json_is_string(e)) {
                return fail(err, len, "%s.command[%zu]: must be a string",
                            where, i);
            }
        }
    }

    v = json_object_get(svc, "image");
    if (docker && !json_is_string(v)) {
        return fail(err, len, "%s.image: required by the docker and swarm "
                    "drivers", where);
    }
    if (v && (!json_is_string(v) || json_string_length(v) == 0)) {
        return fail(err, len, "%s.image: must be a non-empty string", where);
    }

    v = json_object_get(svc, "env");
    if (v) {
        if (!json_is_object(v)) {
            return fail(err, len, "%s.env: must be an object of strings",
                        where);
        }
        json_object_foreach(v, k, e) {
            if (!json_is_string(e)) {
                return fail(err, len, "%s.env.%s: must be a string", where,
                            k);
            }
        }
    }

    v = json_object_get(svc, "health");
    if (v) {
        if (!json_is_object(v)
            || only_keys(v, hkeys, "", err, len) != 0)
        {
            return fail(err, len, "%s.health: must be {\"path\", "
                        "\"timeout\"}", where);
        }
        e = json_object_get(v, "path");
        if (!json_is_string(e) || json_string_value(e)[0] != '/') {
            return fail(err, len, "%s.health.path: must start with /", where);
        }
        e = json_object_get(v, "timeout");
        if (e && (!json_is_integer(e) || json_integer_value(e) < 1
                  || json_integer_value(e) > 3600))
        {
            return fail(err, len, "%s.health.timeout: must be 1-3600 seconds",
                        where);
        }
    }

    v = json_object_get(svc, "resources");
    if (v) {
        if (!json_is_object(v) || only_keys(v, rkeys, "", err, len) != 0) {
            return fail(err, len, "%s.resources: must be {\"memory_mb\", "
                        "\"cpus\"}", where);
        }
        e = json_object_get(v, "memory_mb");
        if (e && (!json_is_integer(e) || json_integer_value(e) < 4
                  || json_integer_value(e) > 1024 * 1024))
        {
            return fail(err, len, "%s.resources.memory_mb: must be 4-1048576",
                        where);
        }
        e = json_object_get(v, "cpus");
        if (e && (!json_is_number(e) || json_number_value(e) <= 0
                  || json_number_value(e) > 1024))
        {
            return fail(err, len, "%s.resources.cpus: must be above 0",
                        where);
        }
    }

    /* Swarm's own syntax ("node.labels.tier==shops"): the engine checks it */
    v = json_object_get(svc, "placement");
    if (v) {
        if (!json_is_array(v) || json_array_size(v) > 16) {
            return fail(err, len, "%s.placement: must be an array of up to 16 "
                        "swarm constraints", where);
        }
        json_array_foreach(v, i, e) {
            if (!json_is_string(e) || json_string_length(e) == 0
                || json_string_length(e) > 256
                || strpbrk(json_string_value(e), "\n\r") != NULL)
            {
                return fail(err, len, "%s.placement[%zu]: must be a "
                            "constraint of 1-256 characters on one line",
                            where, i);
            }
        }
    }

    v = json_object_get(svc, "files");
    if (v) {
        if (!json_is_object(v)) {
            return fail(err, len, "%s.files: must be an object of paths",
                        where);
        }
        json_object_foreach(v, k, e) {
            if (!is_safe_path(k) || !json_is_string(e)
                || !is_safe_path(json_string_value(e)))
            {
                return fail(err, len, "%s.files.%s: paths must be relative "
                            "and stay inside their directory", where, k);
            }
        }
    }

    /* links: {"name in the tenant dir": "what the platform shares"} */
    v = json_object_get(svc, "links");
    if (v) {
        if (!json_is_object(v)) {
            return fail(err, len, "%s.links: must be an object of paths",
                        where);
        }
        json_object_foreach(v, k, e) {
            if (!is_safe_path(k)
                || !json_is_string(e) || json_string_value(e)[0] == '\0')
            {
                return fail(err, len, "%s.links.%s: a relative path inside "
                            "the tenant's directory, to a path", where, k);
            }
        }
    }

    return 0;
}

/* a command: an array of one or more strings */
static int
is_command(json_t *v)
{
    json_t  *e;
    size_t   i;

    if (!json_is_array(v) || json_array_size(v) == 0) {
        return 0;
    }
    json_array_foreach(v, i, e) {
        if (!json_is_string(e)) {
            return 0;
        }
    }
    return 1;
}

/* does the blueprint's array list hold the string value? */
static int
blueprint_json_has(json_t *root, const char *list, const char *value)
{
    json_t *a = json_object_get(root, list), *v;
    size_t  i;

    json_array_foreach(a, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), value) == 0) {
            return 1;
        }
    }
    return 0;
}

/* does obj's "service" name one of the blueprint's services? */
static int
names_service(json_t *obj, json_t *svcs)
{
    json_t *e = json_object_get(obj, "service");

    return json_is_string(e)
           && json_object_get(svcs, json_string_value(e)) != NULL;
}

/* "setup" and "migrate": {"service", "commands", "timeout"} */
static int
check_step(json_t *root, json_t *v, const char *step,
           const char *const *keys, json_t *svcs, char *err, size_t len)
{
    json_t  *e;
    size_t   i;

    if (!json_is_object(v) || only_keys(v, keys, step, err, len)) {
        if (!json_is_object(v)) {
            fail(err, len, "%s: must be {\"service\", \"commands\"}", step);
        }
        return -1;
    }
    if (!names_service(v, svcs)) {
        fail(err, len, "%s.service: no such service", step);
        return -1;
    }
    e = json_object_get(v, "commands");
    if (!json_is_array(e) || json_array_size(e) == 0) {
        fail(err, len, "%s.commands: must be an array of commands", step);
        return -1;
    }
    for (i = 0; i < json_array_size(e); i++) {
        if (!is_command(json_array_get(e, i))) {
            fail(err, len, "%s.commands[%zu]: must be an array of strings",
                 step, i);
            return -1;
        }
    }
    e = json_object_get(v, "timeout");
    if (e && (!json_is_integer(e) || json_integer_value(e) < 1
              || json_integer_value(e) > 3600))
    {
        fail(err, len, "%s.timeout: seconds, 1-3600", step);
        return -1;
    }
    if (blueprint_json_has(root, "drivers", "docker")
        || blueprint_json_has(root, "drivers", "swarm"))
    {
        fail(err, len, "%s: runs on the process driver only; \"drivers\" "
             "must not list docker or swarm", step);
        return -1;
    }
    return 0;
}

const char *
blueprint_validate(json_t *root, const char *name, char *err, size_t len)
{
    static const char *const keys[] = { "name", "description", "drivers",
        "modes", "themes", "database", "roles", "shared", "admin_login",
        "services", "internal", "setup", "migrate", NULL };
    static const char *const drivers[] = { "process", "docker", "swarm",
                                           NULL };
    static const char *const modes[] = { "dedicated", "shared", NULL };
    static const char *const roles[] = { "site", "admin", NULL };
    static const char *const runtime[] = { "runtime", "files", NULL };
    static const char *const login[] = { "file", "line", "service", NULL };
    static const char *const login_cmd[] = { "command", "service", NULL };
    static const char *const setup[] = { "service", "commands", "timeout",
                                         "template", NULL };
    static const char *const migrate[] = { "service", "commands", "timeout",
                                           NULL };
    json_t                  *v, *svcs, *e, *f;
    const char              *k;
    int                      process, docker, dedicated, shared;

    if (!json_is_object(root)) {
        fail(err, len, "the blueprint must be a JSON object");
        return err;
    }
    if (only_keys(root, keys, "", err, len) != 0) {
        return err;
    }

    v = json_object_get(root, "name");
    if (!json_is_string(v) || !is_slug(json_string_value(v))) {
        fail(err, len, "name: must be 1-64 of a-z, 0-9, _ and -");
        return err;
    }
    if (name && strcmp(name, json_string_value(v)) != 0) {
        fail(err, len, "name: \"%s\" does not match the file name \"%s\"",
             json_string_value(v), name);
        return err;
    }

    v = json_object_get(root, "description");
    if (v && !json_is_string(v)) {
        fail(err, len, "description: must be a string");
        return err;
    }

    if (string_list(root, "drivers", drivers, 0, err, len) != 0
        || string_list(root, "modes", modes, 0, err, len) != 0
        || string_list(root, "themes", NULL, 1, err, len) != 0)
    {
        return err;
    }

    process = blueprint_has(&(struct blueprint) { .json = root }, "drivers",
                            "process");
    /* the swarm driver runs the same images */
    docker = blueprint_has(&(struct blueprint) { .json = root }, "drivers",
                           "docker")
             || blueprint_has(&(struct blueprint) { .json = root }, "drivers",
                              "swarm");
    dedicated = blueprint_has(&(struct blueprint) { .json = root }, "modes",
                              "dedicated");
    shared = blueprint_has(&(struct blueprint) { .json = root }, "modes",
                           "shared");

    v = json_object_get(root, "database");
    if (v && !json_is_boolean(v)) {
        fail(err, len, "database: must be true or false");
        return err;
    }

    svcs = json_object_get(root, "services");
    if (dedicated && (!json_is_object(svcs) || json_object_size(svcs) == 0)) {
        fail(err, len, "services: dedicated tenants need at least one "
             "service");
        return err;
    }
    if (svcs) {
        if (!json_is_object(svcs)) {
            fail(err, len, "services: must be an object");
            return err;
        }
        json_object_foreach(svcs, k, e) {
            if (check_service(k, e, process, docker, err, len) != 0) {
                return err;
            }
        }
    }

    v = json_object_get(root, "roles");
    if (dedicated) {
        if (!json_is_object(v) || only_keys(v, roles, "roles", err, len) != 0)
        {
            if (!json_is_object(v)) {
                fail(err, len, "roles: must be {\"site\": service, "
                     "\"admin\": service}");
            }
            return err;
        }
        e = json_object_get(v, "site");
        if (!json_is_string(e)) {
            fail(err, len, "roles.site: must name a service");
            return err;
        }
        json_object_foreach(v, k, e) {
            if (!json_is_string(e)
                || json_object_get(svcs, json_string_value(e)) == NULL)
            {
                fail(err, len, "roles.%s: no such service", k);
                return err;
            }
        }
    }

    v = json_object_get(root, "internal");
    if (v != NULL && !json_is_boolean(v)) {
        fail(err, len, "internal: must be true or false");
        return err;
    }

    /*
     * Shared mode: either a runtime the platform runs ({"runtime":
     * "<blueprint>", "files": {dest: src}}, rendered per tenant into the
     * runtime's sites/<tenant>/), or addresses of one run elsewhere
     * ({"site": address, "admin": address}).
     */
    v = json_object_get(root, "shared");
    if (shared && json_is_object(v) && json_object_get(v, "runtime")) {
        if (only_keys(v, runtime, "shared", err, len) != 0) {
            return err;
        }
        e = json_object_get(v, "runtime");
        if (!json_is_string(e) || !is_slug(json_string_value(e))) {
            fail(err, len, "shared.runtime: must name a blueprint");
            return err;
        }
        e = json_object_get(v, "files");
        if (!json_is_object(e)) {
            fail(err, len, "shared.files: must be {dest: source}");
            return err;
        }
        json_object_foreach(e, k, f) {
            if (!is_safe_path(k) || !json_is_string(f)
                || !is_safe_path(json_string_value(f)))
            {
                fail(err, len, "shared.files.%s: must be a relative path to "
                     "a relative path, no '..'", k);
                return err;
            }
        }
    } else if (shared) {
        if (!json_is_object(v) || only_keys(v, roles, "shared", err, len)) {
            if (!json_is_object(v)) {
                fail(err, len, "shared: shared mode needs a runtime, "
                     "{\"runtime\": blueprint, \"files\": {...}}, or the "
                     "shared runtime's {\"site\": address}");
            }
            return err;
        }
        json_object_foreach(v, k, e) {
            if (!json_is_string(e) || !is_address(json_string_value(e))) {
                fail(err, len, "shared.%s: must be ip:port or unix:/path", k);
                return err;
            }
        }
        if (json_object_get(v, "site") == NULL) {
            fail(err, len, "shared.site: required in shared mode");
            return err;
        }
    }

    /* one-off commands run as a service runs: the process driver's */
    v = json_object_get(root, "setup");
    if (v) {
        if (check_step(root, v, "setup", setup, svcs, err, len) != 0) {
            return err;
        }
        e = json_object_get(v, "template");
        if (e && !json_is_boolean(e)) {
            fail(err, len, "setup.template: true or false");
            return err;
        }
        if (json_is_true(e) && !json_is_true(json_object_get(root,
                                                             "database")))
        {
            fail(err, len, "setup.template: a template database needs "
                 "\"database\": true");
            return err;
        }
    }
    v = json_object_get(root, "migrate");
    if (v && check_step(root, v, "migrate", migrate, svcs, err, len) != 0) {
        return err;
    }

    v = json_object_get(root, "admin_login");
    if (v && json_is_object(v) && json_object_get(v, "command") != NULL) {
        if (only_keys(v, login_cmd, "admin_login", err, len)) {
            return err;
        }
        if (!is_command(json_object_get(v, "command"))) {
            fail(err, len, "admin_login.command: must be an array of strings");
            return err;
        }
        if (!names_service(v, svcs)) {
            fail(err, len, "admin_login.service: no such service");
            return err;
        }
        if (blueprint_json_has(root, "drivers", "docker")
            || blueprint_json_has(root, "drivers", "swarm"))
        {
            fail(err, len, "admin_login.command: runs on the process driver "
                 "only; \"drivers\" must not list docker or swarm");
            return err;
        }
    } else if (v) {
        if (!json_is_object(v) || only_keys(v, login, "admin_login", err, len))
        {
            if (!json_is_object(v)) {
                fail(err, len, "admin_login: must be {\"file\", \"line\", "
                     "\"service\"}");
            }
            return err;
        }
        e = json_object_get(v, "file");
        if (!json_is_string(e) || !is_safe_path(json_string_value(e))) {
            fail(err, len, "admin_login.file: must be a relative path");
            return err;
        }
        e = json_object_get(v, "line");
        if (!json_is_string(e)) {
            fail(err, len, "admin_login.line: must be a string");
            return err;
        }
        if (!names_service(v, svcs)) {
            fail(err, len, "admin_login.service: no such service");
            return err;
        }
    }

    return NULL;
}

int
blueprint_has(const struct blueprint *bp, const char *list, const char *value)
{
    return blueprint_json_has(bp->json, list, value);
}

json_t *
blueprint_services(const struct blueprint *bp)
{
    return json_object_get(bp->json, "services");
}

const char *
blueprint_role(const struct blueprint *bp, const char *role)
{
    return json_string_value(json_object_get(json_object_get(bp->json,
                                                             "roles"),
                                             role));
}

int
blueprint_database(const struct blueprint *bp)
{
    return json_is_true(json_object_get(bp->json, "database"));
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(((const struct blueprint *) a)->name,
                  ((const struct blueprint *) b)->name);
}

/* does any string of the blueprint name an npm runtime? */
static int
names_runtime(json_t *v)
{
    const char  *k;
    json_t      *e;
    size_t       i;

    if (json_is_string(v)) {
        return strstr(json_string_value(v), "{{runtime:") != NULL;
    }
    json_object_foreach(v, k, e) {
        if (names_runtime(e)) {
            return 1;
        }
    }
    json_array_foreach(v, i, e) {
        if (names_runtime(e)) {
            return 1;
        }
    }
    return 0;
}

int
blueprints_load(const char *dir, struct blueprint_set *set, int *broken)
{
    DIR              *d;
    struct dirent    *de;
    struct blueprint *bp, *items;
    json_error_t      jerr;
    json_t           *root;
    char              err[512], name[256];
    size_t            len;

    set->items = NULL;
    set->n = 0;
    *broken = 0;

    d = opendir(dir);
    if (d == NULL) {
        log_err("blueprints: cannot open %s: %s", dir, strerror(errno));
        return -1;
    }

    while ((de = readdir(d)) != NULL) {
        len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0
            || len - 5 >= sizeof(name))
        {
            continue;
        }
        memcpy(name, de->d_name, len - 5);
        name[len - 5] = '\0';

        items = realloc(set->items, (set->n + 1) * sizeof(*items));
        if (items == NULL) {
            log_err("blueprints: out of memory");
            closedir(d);
            blueprints_free(set);
            return -1;
        }
        set->items = items;
        bp = &set->items[set->n];
        memset(bp, 0, sizeof(*bp));

        snprintf(bp->path, sizeof(bp->path), "%s/%s", dir, de->d_name);
        snprintf(bp->dir, sizeof(bp->dir), "%s/%s", dir, name);

        root = json_load_file(bp->path, JSON_REJECT_DUPLICATES, &jerr);
        if (root == NULL) {
            log_err("%s: line %d: %s", bp->path, jerr.line, jerr.text);
            (*broken)++;
            continue;
        }

        if (blueprint_validate(root, name, err, sizeof(err)) != NULL) {
            log_err("%s: %s", bp->path, err);
            json_decref(root);
            (*broken)++;
            continue;
        }

        snprintf(bp->name, sizeof(bp->name), "%s", name);
        bp->json = root;
        bp->runtimes = names_runtime(root);
        set->n++;
    }

    closedir(d);

    qsort(set->items, set->n, sizeof(*set->items), by_name);
    return 0;
}

void
blueprints_free(struct blueprint_set *set)
{
    size_t i;

    for (i = 0; i < set->n; i++) {
        json_decref(set->items[i].json);
    }
    free(set->items);
    set->items = NULL;
    set->n = 0;
}

const struct blueprint *
blueprint_find(const struct blueprint_set *set, const char *name)
{
    size_t i;

    for (i = 0; i < set->n; i++) {
        if (strcmp(set->items[i].name, name) == 0) {
            return &set->items[i];
        }
    }
    return NULL;
}

/*
 * The registry's blueprints table is what the admin API checks against.
 * Provisioners starting together sync at once: a transaction-scoped
 * advisory lock serialises them, and rows are upserted.
 */
int
blueprints_sync(PGconn *conn, const struct blueprint_set *set,
                const char *id, const char *driver)
{
    char       *def, *names;
    const char *params[2];
    PGresult   *res;
    json_t     *list;
    size_t      i;

    if (db_begin(conn) != 0) {
        return -1;
    }

    res = db_query(conn, "lock blueprints",
                   "SELECT pg_advisory_xact_lock(7340012)", 0, NULL);
    if (res == NULL) {
        goto failed;
    }
    PQclear(res);

    list = json_array();
    for (i = 0; list && i < set->n; i++) {
        json_array_append_new(list, json_string(set->items[i].name));
    }
    names = list ? json_dumps(list, JSON_COMPACT) : NULL;
    json_decref(list);
    if (names == NULL) {
        log_err("blueprints: out of memory");
        goto failed;
    }

    params[0] = names;
    res = db_query(conn, "drop removed blueprints",
                   "DELETE FROM blueprints WHERE name NOT IN"
                   " (SELECT jsonb_array_elements_text($1::jsonb))", 1,
                   params);
    free(names);
    if (res == NULL) {
        goto failed;
    }
    PQclear(res);

    for (i = 0; i < set->n; i++) {
        def = json_dumps(set->items[i].json, JSON_COMPACT);
        if (def == NULL) {
            log_err("blueprints: cannot serialise %s", set->items[i].name);
            goto failed;
        }

        params[0] = set->items[i].name;
        params[1] = def;

        res = db_query(conn, "store blueprint",
                       "INSERT INTO blueprints (name, themes, modes,"
                       " definition, updated_at)"
                       " SELECT $1, ARRAY(SELECT jsonb_array_elements_text("
                       "                     d->'themes')),"
                       "        ARRAY(SELECT jsonb_array_elements_text("
                       "                     d->'modes')), d, now()"
                       "   FROM (SELECT $2::jsonb AS d) x"
                       " ON CONFLICT (name) DO UPDATE SET"
                       "   themes = EXCLUDED.themes, modes = EXCLUDED.modes,"
                       "   definition = EXCLUDED.definition,"
                       "   updated_at = now()", 2, params);
        free(def);
        if (res == NULL) {
            goto failed;
        }
        PQclear(res);
    }

    /* the API refuses blueprints that no provisioner's driver can run */
    if (id != NULL) {
        params[0] = id;
        params[1] = driver;
        res = db_query(conn, "announce this provisioner's driver",
                       "INSERT INTO provisioners (id, driver) VALUES ($1, $2)"
                       " ON CONFLICT (id) DO UPDATE SET driver = $2,"
                       "   seen_at = now()", 2, params);
        if (res == NULL) {
            goto failed;
        }
        PQclear(res);
    }

    return db_commit(conn);

failed:

    db_rollback(conn);
    return -1;
}
