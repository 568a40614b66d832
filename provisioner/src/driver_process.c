#define _GNU_SOURCE

/*
 * The process driver: each service is a process group of its own (setsid),
 * its output appended to <state_dir>/<tenant>/logs/<service>.log, its pid
 * and start time in <state_dir>/<tenant>/run/<service>.pid. The start time
 * tells a live service from a recycled pid, and lets a restarted
 * provisioner adopt services it did not start itself.
 */

#include "driver.h"
#include "cgroup.h"
#include "fsutil.h"
#include "logline.h"
#include "stamp.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int
path(char *out, size_t len, const struct conf *c, const char *tenant,
     const char *sub, const char *service, const char *ext)
{
    int n = snprintf(out, len, "%s/%s%s%s%s%s", c->state_dir, tenant,
                     sub ? "/" : "", sub ? sub : "",
                     service ? "/" : "", service ? service : "");
    if (n > 0 && ext) {
        n = snprintf(out + n, len - (size_t) n, "%s", ext) + n;
    }
    return (n < 0 || (size_t) n >= len) ? -1 : 0;
}

/* field 22 of /proc/PID/stat; 0 if gone, a zombie, or unreadable */
static unsigned long long
start_time(pid_t pid)
{
    char                file[64], buf[1024], *p;
    FILE               *f;
    size_t              n;
    int                 field;
    unsigned long long  t = 0;

    snprintf(file, sizeof(file), "/proc/%ld/stat", (long) pid);
    f = fopen(file, "r");
    if (f == NULL) {
        return 0;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';

    /* the command name may hold spaces and parentheses: skip past it */
    p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ' || p[2] == 'Z') {
        return 0;
    }

    for (field = 3, p += 2; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p) {
            p++;
        }
    }
    if (p) {
        t = strtoull(p, NULL, 10);
    }
    return t;
}

static int
read_pid(const char *file, pid_t *pid, unsigned long long *t)
{
    FILE *f = fopen(file, "r");
    long  p;
    int   ok;

    if (f == NULL) {
        return -1;
    }
    ok = fscanf(f, "%ld %llu", &p, t) == 2;
    fclose(f);
    if (!ok || p <= 1) {
        return -1;
    }
    *pid = (pid_t) p;
    return 0;
}

/* the service's pid if it runs, else 0 */
static pid_t
running(const struct conf *c, const char *tenant, const char *service)
{
    char                file[1024];
    pid_t               pid;
    unsigned long long  t;

    if (path(file, sizeof(file), c, tenant, "run", service, ".pid") != 0
        || read_pid(file, &pid, &t) != 0)
    {
        return 0;
    }
    return (t != 0 && start_time(pid) == t) ? pid : 0;
}

static int
proc_status(struct driver *d, const char *tenant, const char *service)
{
    return running(d->conf, tenant, service) ? 1 : 0;
}

/*
 * In a service's child: its own user, no groups of root's, and no way back
 * up through a setuid program (from here on nothing runs with the
 * platform's rights), in the tenant's directory. 0, or -1.
 */
static int
become(const struct service_spec *s)
{
    if (geteuid() == 0
        && (setgroups(0, NULL) != 0 || setgid((gid_t) s->uid) != 0
            || setuid((uid_t) s->uid) != 0))
    {
        return -1;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || chdir(s->dir) != 0) {
        return -1;
    }
    return 0;
}

/*
 * In a child about to exec: every descriptor from lo up closed, in one
 * call where the kernel has close_range (2,048 close calls a service
 * before), else up to 1024 one at a time.
 */
static void
close_from(int lo)
{
    int  i;

    if (close_range((unsigned int) lo, ~0U, 0) == 0) {
        return;
    }
    for (i = lo; i < 1024; i++) {
        close(i);
    }
}


/* what the driver keeps: the stamper's path, and how it limits services */
struct proc_data {
    char              *stamper;
    enum cgroup_mode   cgroups;
};


static int
proc_start(struct driver *d, const struct service_spec *s, char *err,
           size_t len)
{
    struct proc_data   *pd = d->data;
    char                logf[1024], pidf[1024], dir[1024], tmp[1100], go;
    pid_t               pid, stamper;
    int                 fd, nul, i, gate[2], out[2];
    FILE               *f;
    unsigned long long  t;

    if (running(d->conf, s->tenant, s->service)) {
        return 0;
    }

    /* tenant code never runs as root */
    if (geteuid() == 0 && s->uid == 0) {
        snprintf(err, len, "%s/%s has no user of its own: not started as "
                 "root", s->tenant, s->service);
        return -1;
    }

    if (path(dir, sizeof(dir), d->conf, s->tenant, NULL, NULL, NULL) != 0
        || path(logf, sizeof(logf), d->conf, s->tenant, "logs", s->service,
                ".log") != 0
        || path(pidf, sizeof(pidf), d->conf, s->tenant, "run", s->service,
                ".pid") != 0)
    {
        snprintf(err, len, "state_dir path too long for %s", s->tenant);
        return -1;
    }

    if (mkdirs(dir, "logs", 0700) != 0 || mkdirs(dir, "run", 0700) != 0) {
        snprintf(err, len, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }

    fd = open(logf, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || nul < 0) {
        snprintf(err, len, "cannot open %s: %s", logf, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        if (nul >= 0) {
            close(nul);
        }
        return -1;
    }

    /*
     * The child execs only once its pid file exists: if the provisioner
     * dies in between, the child reads EOF and exits, so no service ever
     * runs without a pid file to find it by.
     */
    if (pipe2(gate, O_CLOEXEC) != 0) {
        snprintf(err, len, "pipe: %s", strerror(errno));
        close(fd);
        close(nul);
        return -1;
    }

    pid = fork();
    if (pid < 0) {
        snprintf(err, len, "fork: %s", strerror(errno));
        close(fd);
        close(nul);
        close(gate[0]);
        close(gate[1]);
        return -1;
    }

    if (pid == 0) {
        /* the child: its own session, so stop() can signal the group */
        close(gate[1]);
        if (read(gate[0], &go, 1) != 1) {
            _exit(125);
        }
        setsid();

        if (become(s) != 0 || pipe(out) != 0) {
            _exit(126);
        }

        /*
         * The stamper: every line the service writes reaches its log with
         * the time in front. It is in the service's session (stop() ends
         * both), ignores the stop signal to write the last lines, and
         * exits at EOF, when the service is gone. Its cwd is not the
         * tenant's directory, which holds the service alone.
         */
        stamper = fork();
        if (stamper < 0) {
            _exit(126);
        }
        if (stamper == 0) {
            /*
             * A fork that does not exec keeps every descriptor, close-on-
             * exec or not: the provisioner's registry connection among
             * them, which would outlive a killed provisioner and hide its
             * death from the claim locks.
             */
            if (dup2(out[0], 0) < 0 || dup2(fd, 1) < 0) {
                _exit(126);
            }
            close_from(2);
            signal(SIGTERM, SIG_IGN);
            signal(SIGHUP, SIG_IGN);
            signal(SIGINT, SIG_IGN);
            if (chdir("/") != 0) {
                _exit(126);
            }
            /* a small program of its own, not a copy of the daemon */
            if (pd->stamper != NULL) {
                execl(pd->stamper, "provisioner-logstamp", (char *) NULL);
            }
            /* not reachable as the tenant's user (a clone in /root) */
            stamp_lines(0, 1);
            _exit(0);
        }

        if (dup2(nul, 0) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0) {
            _exit(126);
        }
        close_from(3);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        execvpe(s->argv[0], s->argv, s->envp);
        dprintf(2, "provisioner: cannot run %s: %s\n", s->argv[0],
                strerror(errno));
        _exit(127);
    }

    close(fd);
    close(nul);
    close(gate[0]);

    /* limited before it runs a line of its own: it waits at the gate */
    if (pd->cgroups != CGROUP_NONE && (s->memory_mb > 0 || s->cpus > 0)
        && cgroup_enter(d->conf, pd->cgroups, s->tenant, s->service,
                        s->memory_mb, s->cpus, pid, err, len) != 0)
    {
        close(gate[1]);
        kill(pid, SIGKILL);
        return -1;
    }

    /* the start time is readable once the child exists */
    for (i = 0, t = 0; i < 100 && (t = start_time(pid)) == 0; i++) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }

    snprintf(tmp, sizeof(tmp), "%s.tmp", pidf);
    f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%ld %llu\n", (long) pid, t) < 0
        || fclose(f) != 0 || rename(tmp, pidf) != 0)
    {
        snprintf(err, len, "cannot write %s: %s", pidf, strerror(errno));
        close(gate[1]);
        kill(pid, SIGKILL);
        return -1;
    }

    go = 1;
    if (write(gate[1], &go, 1) != 1) {
        snprintf(err, len, "cannot release %s/%s: %s", s->tenant, s->service,
                 strerror(errno));
        close(gate[1]);
        kill(pid, SIGKILL);
        return -1;
    }
    close(gate[1]);

    log_info("%s/%s: started pid %ld", s->tenant, s->service, (long) pid);
    return 0;
}

/* the service's environment and env after it, malloc'd (not the strings) */
static char **
join_env(char *const *a, char *const *b)
{
    size_t   n = 0, m = 0, i;
    char   **all;

    while (a && a[n]) {
        n++;
    }
    while (b && b[m]) {
        m++;
    }
    all = calloc(n + m + 1, sizeof(char *));
    for (i = 0; all != NULL && i < n + m; i++) {
        all[i] = i < n ? a[i] : b[i - n];
    }
    return all;
}

static int
proc_run(struct driver *d, const struct service_spec *s, char *const *argv,
         char *const *env, int timeout_s, char *err, size_t len)
{
    struct proc_data  *pd = d->data;
    char               dir[1024], logf[1024], group[80];
    char             **envp;
    pid_t              pid;
    int                fd, nul, i, limited, status = 0;
    struct timespec    ts = { 0, 50 * 1000000 };

    if (geteuid() == 0 && s->uid == 0) {
        snprintf(err, len, "%s/%s has no user of its own: not run as root",
                 s->tenant, s->service);
        return -1;
    }
    if (path(dir, sizeof(dir), d->conf, s->tenant, NULL, NULL, NULL) != 0
        || path(logf, sizeof(logf), d->conf, s->tenant, "logs", s->service,
                ".log") != 0)
    {
        snprintf(err, len, "state_dir path too long for %s", s->tenant);
        return -1;
    }
    if (mkdirs(dir, "logs", 0700) != 0) {
        snprintf(err, len, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }

    envp = join_env(s->envp, env);
    fd = open(logf, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (envp == NULL || fd < 0 || nul < 0) {
        snprintf(err, len, "cannot open %s: %s", logf, strerror(errno));
        goto failed;
    }

    pid = fork();
    if (pid < 0) {
        snprintf(err, len, "fork: %s", strerror(errno));
        goto failed;
    }
    if (pid == 0) {
        setsid();
        if (become(s) != 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0
            || dup2(fd, 2) < 0)
        {
            _exit(126);
        }
        close_from(3);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        execvpe(argv[0], argv, envp);
        dprintf(2, "provisioner: cannot run %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }

    /*
     * The service's limits hold for its one-off commands too, in a group
     * of their own ("<service>.run": service names have no dot), so one
     * that runs beside the service (an admin login while it starts) does
     * not take from its share.
     */
    limited = pd->cgroups != CGROUP_NONE && (s->memory_mb > 0 || s->cpus > 0);
    snprintf(group, sizeof(group), "%s.run", s->service);
    if (limited
        && cgroup_enter(d->conf, pd->cgroups, s->tenant, group, s->memory_mb,
                        s->cpus, pid, err, len) != 0)
    {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        cgroup_remove(d->conf, pd->cgroups, s->tenant, group);
        goto failed;
    }

    for (i = 0; ; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            break;
        }
        if (i >= timeout_s * 20) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            snprintf(err, len, "%s/%s: %s did not finish in %d s (killed; "
                     "see the service's log)", s->tenant, s->service,
                     argv[0], timeout_s);
            if (limited) {
                cgroup_remove(d->conf, pd->cgroups, s->tenant, group);
            }
            goto failed;
        }
        nanosleep(&ts, NULL);
    }
    if (limited) {
        cgroup_remove(d->conf, pd->cgroups, s->tenant, group);
    }

    close(fd);
    close(nul);
    free(envp);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, len, "%s/%s: %s %s %d (see the service's log)",
                 s->tenant, s->service, argv[0],
                 WIFEXITED(status) ? "exited with" : "was killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return -1;
    }
    return 0;

failed:

    if (fd >= 0) {
        close(fd);
    }
    if (nul >= 0) {
        close(nul);
    }
    free(envp);
    return -1;
}

static void
reap(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0) {
        /* our own children only; adopted services are init's to reap */
    }
}

static int
proc_stop(struct driver *d, const char *tenant, const char *service,
          char *err, size_t len)
{
    char             pidf[1024];
    pid_t            pid;
    int              i;
    struct timespec  ts = { 0, 20 * 1000000 };

    if (path(pidf, sizeof(pidf), d->conf, tenant, "run", service, ".pid")
        != 0)
    {
        snprintf(err, len, "state_dir path too long for %s", tenant);
        return -1;
    }

    pid = running(d->conf, tenant, service);

    if (pid) {
        kill(-pid, SIGTERM);
        for (i = 0; i < 250 && running(d->conf, tenant, service); i++) {
            reap();
            nanosleep(&ts, NULL);
        }
        if (running(d->conf, tenant, service)) {
            log_warn("%s/%s: pid %ld ignored SIGTERM for 5 s: SIGKILL",
                     tenant, service, (long) pid);
            kill(-pid, SIGKILL);
            for (i = 0; i < 100 && running(d->conf, tenant, service); i++) {
                reap();
                nanosleep(&ts, NULL);
            }
        }
        reap();
        log_info("%s/%s: stopped pid %ld", tenant, service, (long) pid);
    }

    if (unlink(pidf) != 0 && errno != ENOENT) {
        snprintf(err, len, "cannot remove %s: %s", pidf, strerror(errno));
        return -1;
    }
    cgroup_remove(d->conf, ((struct proc_data *) d->data)->cgroups, tenant,
                  service);
    return 0;
}

/* the services a tenant directory has pid files for */
static json_t *
services_of(const struct conf *c, const char *tenant)
{
    char            dir[1024], name[256];
    DIR            *d;
    struct dirent  *de;
    json_t         *out = json_object();
    size_t          n;

    if (out == NULL
        || path(dir, sizeof(dir), c, tenant, "run", NULL, NULL) != 0)
    {
        return out;
    }
    d = opendir(dir);
    if (d == NULL) {
        return out;
    }
    while ((de = readdir(d)) != NULL) {
        n = strlen(de->d_name);
        if (n > 4 && n - 4 < sizeof(name)
            && strcmp(de->d_name + n - 4, ".pid") == 0)
        {
            memcpy(name, de->d_name, n - 4);
            name[n - 4] = '\0';
            json_object_set_new(out, name,
                                json_boolean(running(c, tenant, name) != 0));
        }
    }
    closedir(d);
    return out;
}

static int
proc_remove(struct driver *d, const char *tenant, char *err, size_t len)
{
    char         dir[1024];
    json_t      *svcs, *v;
    const char  *name;
    int          rc = 0;

    svcs = services_of(d->conf, tenant);
    json_object_foreach(svcs, name, v) {
        if (proc_stop(d, tenant, name, err, len) != 0) {
            rc = -1;
        }
    }
    json_decref(svcs);

    if (rc == 0
        && path(dir, sizeof(dir), d->conf, tenant, NULL, NULL, NULL) == 0
        && rmtree(dir) != 0)
    {
        snprintf(err, len, "cannot remove %s: %s", dir, strerror(errno));
        rc = -1;
    }
    return rc;
}

static json_t *
proc_list(struct driver *d)
{
    DIR            *dir;
    struct dirent  *de;
    json_t         *out = json_object();

    dir = opendir(d->conf->state_dir);
    if (dir == NULL || out == NULL) {
        if (dir) {
            closedir(dir);
        }
        return out;
    }
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] != '.' && de->d_type == DT_DIR) {
            json_object_set_new(out, de->d_name,
                                services_of(d->conf, de->d_name));
        }
    }
    closedir(dir);
    return out;
}

static int
proc_logs(struct driver *d, const char *tenant, const char *service,
          int lines, json_t *out)
{
    char  file[1024];

    if (path(file, sizeof(file), d->conf, tenant, "logs", service, ".log")
        != 0)
    {
        return -1;
    }
    return tail_lines(file, lines, service, out);
}

/*
 * Caps every service log at log_cap: the newest half moves to .1 and the
 * log is truncated; the service appends (O_APPEND) from the new start.
 */
static void
proc_tick(struct driver *d)
{
    json_t      *all, *svcs, *v;
    const char  *tenant, *service;
    char         file[1024];

    reap();

    all = proc_list(d);
    json_object_foreach(all, tenant, svcs) {
        json_object_foreach(svcs, service, v) {
            if (path(file, sizeof(file), d->conf, tenant, "logs", service,
                     ".log") == 0)
            {
                cap_file(file, d->conf->log_cap);
            }
        }
    }
    json_decref(all);
}

static int
proc_address(struct driver *d, const struct service_spec *s, char *out,
             size_t len)
{
    (void) d;
    return snprintf(out, len, "127.0.0.1:%d", s->port) >= (int) len ? -1 : 0;
}

static void
proc_cleanup(struct driver *d)
{
    struct proc_data  *pd = d->data;

    if (pd != NULL) {
        free(pd->stamper);
        free(pd);
    }
    d->data = NULL;
}

/* provisioner-logstamp beside our own binary, if it is there */
static char *
stamper_path(void)
{
    char     exe[1024], *slash, *out;
    ssize_t  n;

    n = readlink("/proc/self/exe", exe, sizeof(exe) - 32);
    if (n <= 0) {
        return NULL;
    }
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash == NULL) {
        return NULL;
    }
    strcpy(slash + 1, "provisioner-logstamp");
    if (access(exe, X_OK) != 0) {
        return NULL;
    }
    out = strdup(exe);
    return out;
}

/*
 * The stamper is optional: without it, output is logged unstamped. So are
 * control groups: where none can be written (a container without them),
 * services run unlimited and the log says so once.
 */
static int
proc_init(struct driver *d)
{
    struct proc_data  *pd = calloc(1, sizeof(*pd));
    char               why[700];

    if (pd == NULL) {
        log_err("process driver: out of memory");
        return -1;
    }
    pd->stamper = stamper_path();
    pd->cgroups = CGROUP_NONE;
    if (d->conf->resource_limits) {
        pd->cgroups = cgroup_detect(d->conf, why, sizeof(why));
        if (pd->cgroups == CGROUP_NONE) {
            log_warn("services' memory and CPU limits are not enforced: %s",
                     why);
        } else {
            log_info("services' memory and CPU limits: cgroup %s under %s",
                     pd->cgroups == CGROUP_V2 ? "v2" : "v1",
                     d->conf->cgroup_root);
        }
    }
    d->data = pd;
    return 0;
}

const struct driver_ops  driver_process_ops = {
    .name = "process",
    .init = proc_init,
    .start = proc_start,
    .stop = proc_stop,
    .run = proc_run,
    .remove = proc_remove,
    .status = proc_status,
    .logs = proc_logs,
    .list = proc_list,
    .tick = proc_tick,
    .address = proc_address,
    .cleanup = proc_cleanup,
};
