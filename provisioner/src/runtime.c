#define _GNU_SOURCE

#include "runtime.h"
#include "log.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int
digest_file(EVP_MD_CTX *ctx, const char *path)
{
    unsigned char  buf[65536];
    FILE          *f;
    size_t         n;
    int            rc;

    f = fopen(path, "rb");
    if (f == NULL) {
        return -1;
    }
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        EVP_DigestUpdate(ctx, buf, n);
    }
    rc = ferror(f) ? -1 : 0;
    fclose(f);
    return rc;
}

/*
 * The first 16 hex digits of the SHA-256 of the runtime's lock file and,
 * when it has one, of its list of packages compiled from source after it
 * (auto/runtimes names the install directory by the same digest), or -1.
 */
static int
install_digest(const char *rt, char out[17])
{
    static const char  hex[] = "0123456789abcdef";
    unsigned char      md[EVP_MAX_MD_SIZE];
    unsigned int       mdlen = 0;
    EVP_MD_CTX        *ctx;
    char               path[1200];
    int                i, rc = -1;

    ctx = EVP_MD_CTX_new();
    snprintf(path, sizeof(path), "%s/package-lock.json", rt);
    if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
        && digest_file(ctx, path) == 0)
    {
        snprintf(path, sizeof(path), "%s/native", rt);
        if ((access(path, F_OK) != 0 || digest_file(ctx, path) == 0)
            && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1)
        {
            for (i = 0; i < 8; i++) {
                out[2 * i] = hex[md[i] >> 4];
                out[2 * i + 1] = hex[md[i] & 15];
            }
            out[16] = '\0';
            rc = 0;
        }
    }
    EVP_MD_CTX_free(ctx);
    return rc;
}

json_t *
runtime_dirs(const struct conf *c)
{
    DIR            *dir;
    struct dirent  *e;
    json_t         *out = json_object();
    char            rt[1100], inst[1200], digest[17];

    if (out == NULL) {
        return NULL;
    }
    dir = opendir(c->runtimes);
    if (dir == NULL) {
        return out;    /* a checkout without runtimes has none */
    }
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(rt, sizeof(rt), "%s/%s", c->runtimes, e->d_name);
        if (install_digest(rt, digest) != 0) {
            continue;
        }
        snprintf(inst, sizeof(inst), "%s/%s-%s", c->runtime_dir, e->d_name,
                 digest);
        json_object_set_new(out, e->d_name, json_string(inst));
    }
    closedir(dir);
    return out;
}

/* installed since the provisioner started, or not yet: asked each time */
json_t *
runtime_installed(json_t *dirs)
{
    json_t      *out = json_object(), *v;
    const char  *name;
    char         inst[1300];

    if (out == NULL) {
        return NULL;
    }
    json_object_foreach(dirs, name, v) {
        snprintf(inst, sizeof(inst), "%s/.installed", json_string_value(v));
        if (access(inst, R_OK) == 0) {
            json_object_set(out, name, v);
        }
    }
    return out;
}
