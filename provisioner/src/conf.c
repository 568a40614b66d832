#define _POSIX_C_SOURCE 200809L

#include "conf.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
conf_defaults(struct conf *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->db, sizeof(c->db), "dbname=tenant");
    snprintf(c->driver, sizeof(c->driver), "process");
    snprintf(c->blueprints, sizeof(c->blueprints), "blueprints");
    snprintf(c->state_dir, sizeof(c->state_dir), "var/tenants");
    c->poll_interval = 5;
}

static char *
trim(char *s)
{
    char *end;

    while (isspace((unsigned char) *s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && isspace((unsigned char) end[-1])) {
        *--end = '\0';
    }
    return s;
}

static int
set_str(char *dst, size_t size, const char *val, const char *path, int line,
        const char *key)
{
    if (strlen(val) >= size) {
        log_err("%s:%d: value of \"%s\" is too long (max %zu)", path, line,
                key, size - 1);
        return -1;
    }
    memcpy(dst, val, strlen(val) + 1);
    return 0;
}

/* "key = value" lines; '#' starts a comment. Unknown keys are errors, so a
 * typo is reported instead of silently running with a default. */
int
conf_load(struct conf *c, const char *path)
{
    FILE  *f;
    char   buf[1024], *p, *eq, *key, *val, *end;
    int    line = 0, rc = 0;
    long   n;

    f = fopen(path, "r");
    if (f == NULL) {
        log_err("cannot open config %s: %s", path, strerror(errno));
        return -1;
    }

    while (fgets(buf, sizeof(buf), f) != NULL) {
        line++;
        p = strchr(buf, '#');
        if (p) {
            *p = '\0';
        }
        p = trim(buf);
        if (*p == '\0') {
            continue;
        }
        eq = strchr(p, '=');
        if (eq == NULL) {
            log_err("%s:%d: expected \"key = value\"", path, line);
            rc = -1;
            break;
        }
        *eq = '\0';
        key = trim(p);
        val = trim(eq + 1);

        if (strcmp(key, "db") == 0) {
            rc = set_str(c->db, sizeof(c->db), val, path, line, key);
        } else if (strcmp(key, "driver") == 0) {
            rc = set_str(c->driver, sizeof(c->driver), val, path, line, key);
        } else if (strcmp(key, "blueprints") == 0) {
            rc = set_str(c->blueprints, sizeof(c->blueprints), val, path,
                         line, key);
        } else if (strcmp(key, "state_dir") == 0) {
            rc = set_str(c->state_dir, sizeof(c->state_dir), val, path, line,
                         key);
        } else if (strcmp(key, "poll_interval") == 0) {
            errno = 0;
            n = strtol(val, &end, 10);
            if (errno || *end != '\0' || n < 1 || n > 3600) {
                log_err("%s:%d: \"poll_interval\" must be 1..3600 seconds",
                        path, line);
                rc = -1;
            } else {
                c->poll_interval = (int) n;
            }
        } else {
            log_err("%s:%d: unknown key \"%s\"", path, line, key);
            rc = -1;
        }

        if (rc != 0) {
            break;
        }
    }

    fclose(f);
    return rc;
}
