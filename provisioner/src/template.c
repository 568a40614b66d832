#define _POSIX_C_SOURCE 200809L

#include "template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
    char   *p;
    size_t  len;
    size_t  cap;
};

static int
put(struct buf *b, const char *s, size_t n)
{
    char   *p;
    size_t  cap;

    if (b->len + n + 1 > b->cap) {
        cap = (b->len + n + 1) * 2;
        p = realloc(b->p, cap);
        if (p == NULL) {
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* the value of one placeholder, or NULL when it has none */
static const char *
lookup(const char *name, const struct tctx *c, char *num, size_t numlen)
{
    json_t *v;

    if (strcmp(name, "tenant") == 0) {
        return c->tenant;
    }
    if (strcmp(name, "theme") == 0) {
        return c->theme;
    }
    if (strcmp(name, "dir") == 0) {
        return c->dir;
    }
    if (strcmp(name, "domain") == 0) {
        return c->domain;
    }
    if (strcmp(name, "display_name") == 0) {
        return c->display_name;
    }
    if (strcmp(name, "bind") == 0) {
        return c->bind ? c->bind : "127.0.0.1";
    }
    if (strcmp(name, "port") == 0) {
        if (c->port <= 0) {
            return NULL;
        }
        snprintf(num, numlen, "%d", c->port);
        return num;
    }
    if (strncmp(name, "port:", 5) == 0) {
        v = json_object_get(c->ports, name + 5);
        if (!json_is_integer(v)) {
            return NULL;
        }
        snprintf(num, numlen, "%lld", (long long) json_integer_value(v));
        return num;
    }
    if (strcmp(name, "db_url") == 0) {
        return c->db_url;
    }
    if (strcmp(name, "db_host") == 0) {
        return c->db_host;
    }
    if (strcmp(name, "db_port") == 0) {
        return c->db_port;
    }
    if (strcmp(name, "db_name") == 0) {
        return c->db_name;
    }
    if (strcmp(name, "db_user") == 0) {
        return c->db_user;
    }
    if (strcmp(name, "db_password") == 0) {
        return c->db_password;
    }
    if (strncmp(name, "secret:", 7) == 0) {
        return json_string_value(json_object_get(c->secrets, name + 7));
    }
    if (strncmp(name, "runtime:", 8) == 0) {
        return json_string_value(json_object_get(c->runtimes, name + 8));
    }
    if (strcmp(name, "admin_email") == 0) {
        return c->admin_email;
    }
    if (strcmp(name, "admin_password_crypt") == 0) {
        return c->admin_password_crypt;
    }
    return NULL;
}

/* a value, escaped for where it goes */
static int
put_escaped(struct buf *b, const char *v, enum tpl_escape esc,
            const char *name, char *err, size_t errlen)
{
    const char  *p, *rep;
    char         hex[8];
    int          rc = 0;

    if (esc == TPL_RAW) {
        return put(b, v, strlen(v));
    }

    for (p = v; *p && rc == 0; p++) {
        rep = NULL;

        if (esc == TPL_HTML) {
            rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>'
                  ? "&gt;" : *p == '"' ? "&quot;" : *p == '\'' ? "&#39;"
                  : NULL;

        } else if (esc == TPL_JSON) {
            if (*p == '"' || *p == '\\') {
                hex[0] = '\\';
                hex[1] = *p;
                hex[2] = '\0';
                rep = hex;
            } else if ((unsigned char) *p < 0x20 || *p == 0x7f) {
                snprintf(hex, sizeof(hex), "\\u%04x", (unsigned char) *p);
                rep = hex;
            }

        } else if (*p == '\n' || *p == '\r' || *p == '\0') {
            snprintf(err, errlen, "{{%s}}: a line break cannot go into a "
                     "line of this file", name);
            return -1;
        }

        rc = rep ? put(b, rep, strlen(rep)) : put(b, p, 1);
    }

    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
    }
    return rc;
}

enum tpl_escape
template_escape_for(const char *file)
{
    const char *dot = strrchr(file, '.');

    if (dot == NULL || strchr(dot, '/') != NULL) {
        return TPL_LINE;
    }
    if (strcmp(dot, ".html") == 0 || strcmp(dot, ".htm") == 0
        || strcmp(dot, ".xml") == 0 || strcmp(dot, ".svg") == 0)
    {
        return TPL_HTML;
    }
    if (strcmp(dot, ".json") == 0) {
        return TPL_JSON;
    }
    return TPL_LINE;
}

char *
template_render(const char *tpl, const struct tctx *c, char *err,
                size_t errlen)
{
    return template_render_as(tpl, c, TPL_RAW, err, errlen);
}

char *
template_render_as(const char *tpl, const struct tctx *c,
                   enum tpl_escape esc, char *err, size_t errlen)
{
    struct buf   b = { NULL, 0, 0 };
    const char  *p, *open, *close, *val;
    char         name[80], num[24];
    size_t       n;

    if (put(&b, "", 0) != 0) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    for (p = tpl; (open = strstr(p, "{{")) != NULL; p = close + 2) {
        close = strstr(open + 2, "}}");
        if (close == NULL) {
            snprintf(err, errlen, "unclosed {{ in \"%.40s\"", tpl);
            goto failed;
        }
        n = (size_t) (close - open - 2);
        if (n == 0 || n >= sizeof(name)) {
            snprintf(err, errlen, "bad placeholder in \"%.40s\"", tpl);
            goto failed;
        }
        memcpy(name, open + 2, n);
        name[n] = '\0';

        val = lookup(name, c, num, sizeof(num));
        if (val == NULL && strncmp(name, "runtime:", 8) == 0) {
            snprintf(err, errlen, "runtime %s is not installed on this "
                     "machine: auto/runtimes install %s", name + 8, name + 8);
            goto failed;
        }
        if (val == NULL) {
            snprintf(err, errlen, "{{%s}} has no value here", name);
            goto failed;
        }

        if (put(&b, p, (size_t) (open - p)) != 0) {
            snprintf(err, errlen, "out of memory");
            goto failed;
        }
        if (put_escaped(&b, val, esc, name, err, errlen) != 0) {
            goto failed;
        }
    }

    if (put(&b, p, strlen(p)) != 0) {
        snprintf(err, errlen, "out of memory");
        goto failed;
    }

    return b.p;

failed:

    free(b.p);
    return NULL;
}

int
template_secrets(const char *tpl, int (*fn)(const char *name, void *data),
                 void *data)
{
    const char *p, *close;
    char        name[80];
    size_t      n;

    for (p = tpl; (p = strstr(p, "{{secret:")) != NULL; p = close + 2) {
        close = strstr(p, "}}");
        if (close == NULL) {
            return 0;
        }
        n = (size_t) (close - p - 9);
        if (n == 0 || n >= sizeof(name)) {
            continue;
        }
        memcpy(name, p + 9, n);
        name[n] = '\0';
        if (fn(name, data) != 0) {
            return -1;
        }
    }
    return 0;
}
