#define _GNU_SOURCE

/*
 * The local store: backup_dir/<tenant>/<id>/, root's alone (0700). A
 * backup is staged in backup_dir/<tenant>/.<id>.partial and renamed into
 * place once its files are on disk, so a crash leaves only a .partial
 * directory, never a backup that looks whole.
 */

#include "backup_store.h"
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
split_key(const char *key, char *tenant, size_t tlen, const char **id)
{
    const char *slash = strchr(key, '/');

    if (slash == NULL || (size_t) (slash - key) >= tlen || slash[1] == '\0'
        || strchr(slash + 1, '/') != NULL || slash[1] == '.')
    {
        return -1;
    }
    memcpy(tenant, key, (size_t) (slash - key));
    tenant[slash - key] = '\0';
    *id = slash + 1;
    return 0;
}

static int
local_stage(struct backup_store *s, const char *key, char *dir, size_t dlen,
            char *err, size_t len)
{
    char         tenant[128];
    const char  *id;

    if (split_key(key, tenant, sizeof(tenant), &id) != 0) {
        snprintf(err, len, "backup store: bad key %s", key);
        return -1;
    }
    if (mkdirs(s->conf->backup_dir, tenant, 0700) != 0) {
        snprintf(err, len, "backup store: cannot create %s/%s: %s",
                 s->conf->backup_dir, tenant, strerror(errno));
        return -1;
    }
    if ((size_t) snprintf(dir, dlen, "%s/%s/.%s.partial", s->conf->backup_dir,
                          tenant, id) >= dlen)
    {
        snprintf(err, len, "backup store: path too long");
        return -1;
    }
    /* what a killed attempt left */
    if (rmtree(dir) != 0 || mkdir(dir, 0700) != 0) {
        snprintf(err, len, "backup store: cannot make %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* every file of dir on disk before the rename that publishes them */
static int
sync_dir(const char *dir)
{
    DIR            *d;
    struct dirent  *e;
    char            file[2300];
    int             fd, rc = 0;

    d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL && rc == 0) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(file, sizeof(file), "%s/%s", dir, e->d_name);
        fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0) {
            rc = -1;
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    closedir(d);
    if (rc == 0) {
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = (fd < 0 || fsync(fd) != 0) ? -1 : 0;
        if (fd >= 0) {
            close(fd);
        }
    }
    return rc;
}

static int
local_commit(struct backup_store *s, const char *key, const char *dir,
             char *err, size_t len)
{
    char  final[2100];

    snprintf(final, sizeof(final), "%s/%s", s->conf->backup_dir, key);
    if (sync_dir(dir) != 0) {
        snprintf(err, len, "backup store: cannot sync %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    /* a resumed job's earlier copy is replaced */
    if (rmtree(final) != 0 || rename(dir, final) != 0) {
        snprintf(err, len, "backup store: cannot move %s to %s: %s", dir,
                 final, strerror(errno));
        return -1;
    }
    return 0;
}

static int
local_fetch(struct backup_store *s, const char *key, const char *file,
            char *path, size_t plen, char *err, size_t len)
{
    struct stat st;

    snprintf(path, plen, "%s/%s/%s", s->conf->backup_dir, key, file);
    if (stat(path, &st) != 0) {
        snprintf(err, len, "backup store: %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void
local_release(struct backup_store *s, const char *path)
{
    (void) s;
    (void) path;
}

static int
local_remove(struct backup_store *s, const char *key, char *err, size_t len)
{
    char         dir[2100], tenant[128];
    const char  *id;

    if (split_key(key, tenant, sizeof(tenant), &id) != 0) {
        snprintf(err, len, "backup store: bad key %s", key);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s/%s", s->conf->backup_dir, key);
    if (rmtree(dir) != 0) {
        snprintf(err, len, "backup store: cannot remove %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    /* the tenant's directory goes with its last backup */
    snprintf(dir, sizeof(dir), "%s/%s", s->conf->backup_dir, tenant);
    if (rmdir(dir) != 0 && errno != ENOTEMPTY && errno != EEXIST
        && errno != ENOENT)
    {
        snprintf(err, len, "backup store: cannot remove %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    return 0;
}

const struct backup_store_ops  backup_store_local_ops = {
    "local",
    local_stage,
    local_commit,
    local_fetch,
    local_release,
    local_remove,
};

void
backup_store_init(struct backup_store *s, const struct conf *conf)
{
    s->ops = &backup_store_local_ops;
    s->conf = conf;
}
