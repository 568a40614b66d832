#define _GNU_SOURCE

#include "cgroup.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cgroup v1 hierarchies we limit through, by controller */
static const char *const  v1_controllers[] = { "memory", "cpu", NULL };

static int
write_file(const char *dir, const char *file, const char *value, char *err,
           size_t len)
{
    char     path[1200];
    int      fd;
    ssize_t  n;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, len, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    n = write(fd, value, strlen(value));
    if (n != (ssize_t) strlen(value)) {
        snprintf(err, len, "cannot write \"%s\" to %s: %s", value, path,
                 n < 0 ? strerror(errno) : "short write");
        close(fd);
        return -1;
    }
    return close(fd) == 0 ? 0 : -1;
}

static int
make_dir(const char *path, char *err, size_t len)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        snprintf(err, len, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* does the v2 file list (cgroup.controllers) name memory and cpu? */
static int
v2_has_controllers(const char *root)
{
    char   path[600], buf[256];
    FILE  *f;
    int    ok = 0;

    snprintf(path, sizeof(path), "%s/cgroup.controllers", root);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    if (fgets(buf, sizeof(buf), f) != NULL) {
        ok = strstr(buf, "memory") != NULL && strstr(buf, "cpu") != NULL;
    }
    fclose(f);
    return ok;
}

enum cgroup_mode
cgroup_detect(const struct conf *c, char *err, size_t len)
{
    char          path[600];
    const char   *const *ctl;
    struct stat   st;

    if (v2_has_controllers(c->cgroup_root)) {
        snprintf(path, sizeof(path), "%s/cgroup.subtree_control",
                 c->cgroup_root);
        if (access(path, W_OK) == 0) {
            return CGROUP_V2;
        }
    }

    for (ctl = v1_controllers; *ctl; ctl++) {
        snprintf(path, sizeof(path), "%s/%s", c->cgroup_root, *ctl);
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)
            || access(path, W_OK) != 0)
        {
            snprintf(err, len, "no writable cgroup v2 with memory and cpu, "
                     "nor cgroup v1 %s hierarchy, at %s", *ctl,
                     c->cgroup_root);
            return CGROUP_NONE;
        }
    }
    return CGROUP_V1;
}

int
cgroup_enter(const struct conf *c, enum cgroup_mode mode, const char *tenant,
             const char *service, long memory_mb, double cpus, pid_t pid,
             char *err, size_t len)
{
    char          parent[700], dir[1000], val[64];
    const char   *const *ctl;
    long          quota = cpus > 0 ? (long) (cpus * 100000) : -1;

    if (quota >= 0 && quota < 1000) {
        quota = 1000;    /* the kernel's least */
    }
    snprintf(val, sizeof(val), "%ld", (long) pid);

    if (mode == CGROUP_V2) {
        snprintf(parent, sizeof(parent), "%s/%s", c->cgroup_root,
                 c->cgroup_parent);
        snprintf(dir, sizeof(dir), "%s/%s.%s", parent, tenant, service);
        if (write_file(c->cgroup_root, "cgroup.subtree_control",
                       "+memory +cpu", err, len) != 0
            || make_dir(parent, err, len) != 0
            || write_file(parent, "cgroup.subtree_control", "+memory +cpu",
                          err, len) != 0
            || make_dir(dir, err, len) != 0)
        {
            return -1;
        }
        if (memory_mb > 0) {
            snprintf(val, sizeof(val), "%ld", memory_mb << 20);
            if (write_file(dir, "memory.max", val, err, len) != 0) {
                return -1;
            }
        }
        if (quota > 0) {
            snprintf(val, sizeof(val), "%ld 100000", quota);
            if (write_file(dir, "cpu.max", val, err, len) != 0) {
                return -1;
            }
        }
        snprintf(val, sizeof(val), "%ld", (long) pid);
        return write_file(dir, "cgroup.procs", val, err, len);
    }

    for (ctl = v1_controllers; *ctl; ctl++) {
        snprintf(parent, sizeof(parent), "%s/%s/%s", c->cgroup_root, *ctl,
                 c->cgroup_parent);
        snprintf(dir, sizeof(dir), "%s/%s.%s", parent, tenant, service);
        if (make_dir(parent, err, len) != 0 || make_dir(dir, err, len) != 0) {
            return -1;
        }
        if (strcmp(*ctl, "memory") == 0 && memory_mb > 0) {
            snprintf(val, sizeof(val), "%ld", memory_mb << 20);
            if (write_file(dir, "memory.limit_in_bytes", val, err, len) != 0) {
                return -1;
            }
        }
        if (strcmp(*ctl, "cpu") == 0 && quota > 0) {
            snprintf(val, sizeof(val), "%ld", quota);
            if (write_file(dir, "cpu.cfs_period_us", "100000", err, len) != 0
                || write_file(dir, "cpu.cfs_quota_us", val, err, len) != 0)
            {
                return -1;
            }
        }
        snprintf(val, sizeof(val), "%ld", (long) pid);
        if (write_file(dir, "cgroup.procs", val, err, len) != 0) {
            return -1;
        }
    }
    return 0;
}

/* a group empties as its last process (the log stamper) exits: wait a
 * little for it */
static void
remove_dir(const char *dir)
{
    int  i;

    for (i = 0; i < 50; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT) {
            return;
        }
        if (errno != EBUSY) {
            break;
        }
        clock_pause_ms(20);
    }
    log_warn("cannot remove %s: %s", dir, strerror(errno));
}

void
cgroup_remove(const struct conf *c, enum cgroup_mode mode,
              const char *tenant, const char *service)
{
    char          dir[1000];
    const char   *const *ctl;

    if (mode == CGROUP_V2) {
        snprintf(dir, sizeof(dir), "%s/%s/%s.%s", c->cgroup_root,
                 c->cgroup_parent, tenant, service);
        remove_dir(dir);
        return;
    }
    if (mode != CGROUP_V1) {
        return;
    }
    for (ctl = v1_controllers; *ctl; ctl++) {
        snprintf(dir, sizeof(dir), "%s/%s/%s/%s.%s", c->cgroup_root, *ctl,
                 c->cgroup_parent, tenant, service);
        remove_dir(dir);
    }
}
