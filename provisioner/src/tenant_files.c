#define _GNU_SOURCE

/*
 * A tenant's files: its blueprint's templates rendered into its home with
 * its own rights, and its admin login.
 */

#include "tenant.h"
#include "fsutil.h"

#include <crypt.h>
#include <errno.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
tenant_context(struct tenant *t, int port, struct tctx *c)
{
    memset(c, 0, sizeof(*c));
    c->bind = t->bind;
    c->tenant = t->id;
    c->theme = t->theme;
    c->dir = t->dir;
    c->domain = t->domain;
    c->display_name = t->display_name;
    c->port = port;
    c->ports = t->ports;
    c->secrets = t->secrets;
    c->db_url = t->db_url[0] ? t->db_url : NULL;
    c->db_name = t->db_url[0] ? t->db_name : NULL;
    c->db_host = t->db_url[0] ? t->db_host : NULL;
    c->db_port = t->db_url[0] ? t->db_port : NULL;
    c->db_user = t->db_url[0] ? t->db_name : NULL;
    c->db_password = json_string_value(json_object_get(t->secrets,
                                                       "db_password"));
    c->admin_email = t->admin_email[0] ? t->admin_email : NULL;
    c->admin_password_crypt = t->admin_crypt[0] ? t->admin_crypt : NULL;
    c->runtimes = t->runtimes;
}

/*
 * A symbolic link in the tenant's directory to what the platform shares
 * read-only (an npm runtime's node_modules): one install, many tenants.
 * Made as the tenant, replacing whatever the tenant left there.
 */
static int
make_link(struct tenant *t, const char *dest, const char *target,
          struct tctx *c, char *err, size_t len)
{
    char  *d, *to, file[2048], parent[2048], *cut;
    int    rc = -1;

    d = template_render(dest, c, err, len);
    to = d ? template_render(target, c, err, len) : NULL;
    if (d == NULL || to == NULL) {
        free(d);
        return -1;
    }
    snprintf(file, sizeof(file), "%s/%s", t->dir, d);
    snprintf(parent, sizeof(parent), "%s", d);
    cut = strrchr(parent, '/');
    if (cut) {
        *cut = '\0';
    }

    if (tenant_become(t) != 0) {
        snprintf(err, len, "cannot link %s as its tenant", file);
    } else {
        if ((cut && mkdirs(t->dir, parent, 0750) != 0)
            || (unlink(file) != 0 && errno != ENOENT)
            || symlink(to, file) != 0)
        {
            snprintf(err, len, "cannot link %s to %s: %s", file, to,
                     strerror(errno));
        } else {
            rc = 0;
        }
        tenant_unbecome(t);
    }
    free(d);
    free(to);
    return rc;
}

/* a file of the blueprint's, rendered into the tenant's directory */
static int
render_file(struct prov *p, struct tenant *t, const char *dest,
            const char *src, struct tctx *c, char *err, size_t len)
{
    char   *d, *s, *body, *out, file[2048], slash[2048], *cut;
    size_t  n;
    int     rc = -1;

    d = template_render(dest, c, err, len);
    s = d ? template_render(src, c, err, len) : NULL;
    if (d == NULL || s == NULL) {
        free(d);
        return -1;
    }

    snprintf(file, sizeof(file), "%s/%s", t->bp->dir, s);
    body = read_file(file, 1024 * 1024, &n);
    if (body == NULL) {
        snprintf(err, len, "%s: cannot read %s: %s", t->bp->path, file,
                 strerror(errno));
        goto done;
    }

    /* a file's contents are a text format: values are escaped for it */
    out = template_render_as(body, c, template_escape_for(d), err, len);
    free(body);
    if (out == NULL) {
        goto done;
    }

    snprintf(slash, sizeof(slash), "%s", d);
    cut = strrchr(slash, '/');
    if (cut) {
        *cut = '\0';
    }
    snprintf(file, sizeof(file), "%s/%s", t->dir, d);

    if (tenant_become(t) != 0) {
        snprintf(err, len, "cannot write %s as its tenant", file);
    } else if ((cut && mkdirs(t->dir, slash, 0750) != 0)
               || write_file(file, out, strlen(out), 0640) != 0)
    {
        snprintf(err, len, "cannot write %s: %s", file, strerror(errno));
        tenant_unbecome(t);
    } else {
        tenant_unbecome(t);
        rc = 0;
    }
    free(out);

done:
    (void) p;
    free(d);
    free(s);
    return rc;
}

int
tenant_write_files(struct prov *p, struct tenant *t, char *err, size_t len)
{
    json_t      *svcs, *svc, *files, *links, *src;
    const char  *name, *dest;
    struct tctx  c;

    if (tenant_ensure_user(p, t, err, len) != 0) {
        return -1;
    }

    svcs = blueprint_services(t->bp);
    json_object_foreach(svcs, name, svc) {
        tenant_context(t, (int) json_integer_value(json_object_get(t->ports, name)),
                &c);
        files = json_object_get(svc, "files");
        json_object_foreach(files, dest, src) {
            if (render_file(p, t, dest, json_string_value(src), &c, err, len)
                != 0)
            {
                return -1;
            }
        }
        links = json_object_get(svc, "links");
        json_object_foreach(links, dest, src) {
            if (make_link(t, dest, json_string_value(src), &c, err, len) != 0)
            {
                return -1;
            }
        }
    }
    return 0;
}

/* the admin login (blueprint admin_login): email and a crypt()ed password */
int
tenant_write_login(struct prov *p, struct tenant *t, const char *email,
                   const char *password, char *err, size_t len)
{
    json_t            *login;
    char               salt[12], file[2048], *line, *body;
    const char        *hash;
    struct tctx        c;
    struct crypt_data  cd;

    (void) p;
    login = json_object_get(t->bp->json, "admin_login");
    /* a login made by a command runs once the application is set up */
    if (login == NULL || json_object_get(login, "command") != NULL) {
        return 0;
    }

    /*
     * The login line is a structured record: a value that could end a
     * field or a line would rewrite it (a job queued behind the API's
     * back is checked here too).
     */
    if (email[strcspn(email, ":\n\r\t ,;\"\\<>")] != '\0'
        || strchr(email, '@') == NULL)
    {
        snprintf(err, len, "the admin email is not a plain address");
        return -1;
    }

    /* MD5-crypt: what busybox httpd's basic auth reads */
    memcpy(salt, "$1$", 3);
    if (secret_password(salt + 3, 8) != 0) {
        snprintf(err, len, "cannot make a salt");
        return -1;
    }
    memset(&cd, 0, sizeof(cd));
    hash = crypt_r(password, salt, &cd);
    if (hash == NULL || hash[0] == '*') {
        snprintf(err, len, "crypt() failed");
        return -1;
    }

    snprintf(t->admin_email, sizeof(t->admin_email), "%s", email);
    snprintf(t->admin_crypt, sizeof(t->admin_crypt), "%s", hash);
    tenant_context(t, 0, &c);

    line = template_render_as(json_string_value(json_object_get(login,
                                                                "line")),
                              &c, TPL_LINE, err, len);
    if (line == NULL) {
        return -1;
    }
    if (asprintf(&body, "%s\n", line) < 0) {
        free(line);
        snprintf(err, len, "out of memory");
        return -1;
    }
    free(line);

    snprintf(file, sizeof(file), "%s/%s", t->dir,
             json_string_value(json_object_get(login, "file")));
    if (tenant_become(t) != 0) {
        snprintf(err, len, "cannot write %s as its tenant", file);
        free(body);
        return -1;
    }
    if (write_file(file, body, strlen(body), 0600) != 0) {
        snprintf(err, len, "cannot write %s: %s", file, strerror(errno));
        tenant_unbecome(t);
        free(body);
        return -1;
    }
    tenant_unbecome(t);
    free(body);
    return 0;
}


/* renders a blueprint files map ({dest: src}) for t into another directory */
int
tenant_render_into(struct prov *p, struct tenant *t, json_t *files,
                   const char *into, char *err, size_t len)
{
    char         saved[sizeof(t->dir)];
    const char  *dest;
    json_t      *src;
    struct tctx  c;
    int          rc = 0;

    memcpy(saved, t->dir, sizeof(saved));
    snprintf(t->dir, sizeof(t->dir), "%s", into);
    if (mkdirs(t->dir, NULL, 0755) != 0) {
        snprintf(err, len, "cannot create %s: %s", t->dir, strerror(errno));
        rc = -1;
    }
    tenant_context(t, 0, &c);
    json_object_foreach(files, dest, src) {
        if (rc == 0 && render_file(p, t, dest, json_string_value(src), &c,
                                   err, len) != 0)
        {
            rc = -1;
        }
    }
    memcpy(t->dir, saved, sizeof(saved));
    return rc;
}
