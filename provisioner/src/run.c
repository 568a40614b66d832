#define _POSIX_C_SOURCE 200809L

#include "run.h"
#include "db.h"
#include "jobs.h"
#include "log.h"
#include "reconcile.h"
#include "check.h"
#include "prov_metrics.h"
#include "tasks.h"
#include "tenant.h"
#include "acme.h"
#include "backup_schedule.h"
#include "jwks.h"
#include "runtime.h"
#include "domains.h"
#include "fsutil.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS  64

/* the daemon's worker processes (workers - 1 of them), by slot */
static pid_t  worker_pid[MAX_WORKERS];
static double worker_started[MAX_WORKERS];

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static int serve(struct prov *p);

static void
on_signal(int sig)
{
    if (sig == SIGHUP) {
        reload_requested = 1;
    } else {
        stop_requested = 1;
    }
}

static int
install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);

    if (sigaction(SIGTERM, &sa, NULL) != 0
        || sigaction(SIGINT, &sa, NULL) != 0
        || sigaction(SIGHUP, &sa, NULL) != 0)
    {
        log_err("sigaction: %s", strerror(errno));
        return -1;
    }

    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (!stop_requested && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        /* a signal woke us: re-check stop_requested */
    }
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Connects and LISTENs, retrying with capped exponential backoff: the
 * registry may start after us or restart under us. */
static PGconn *
connect_listening(struct prov *p)
{
    PGconn *conn;
    long    backoff = 100;

    while (!stop_requested) {
        conn = db_connect(p->conf.db);
        if (conn != NULL) {
            if (db_exec(conn, "listen jobs", "LISTEN jobs") == 0) {
                log_info("connected to the registry, listening on \"jobs\"");
                return conn;
            }
            PQfinish(conn);
        }

        log_warn("registry unavailable, retrying in %ld ms", backoff);
        sleep_ms(backoff);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }

    return NULL;
}

/* blueprints are read at start and on SIGHUP, and published to the registry */
static int
load_blueprints(struct prov *p)
{
    struct blueprint_set  set;
    int                   broken;

    if (blueprints_load(p->conf.blueprints, &set, &broken) != 0) {
        return -1;
    }
    if (broken) {
        log_err("%d blueprint(s) refused, see above", broken);
    }
    /*
     * Jobs run from the files just loaded; the registry's copy only serves
     * the API's checks, so failing to publish it keeps them all the same.
     */
    if (p->conn && p->worker == 0
        && blueprints_sync(p->conn, &set, p->conf.id, p->driver->name) != 0)
    {
        log_err("blueprints loaded but not published to the registry");
    }
    blueprints_free(&p->blueprints);
    p->blueprints = set;
    /* their runtimes' lock files are read with them, not per tenant */
    json_decref(p->runtime_dirs);
    p->runtime_dirs = runtime_dirs(&p->conf);
    log_info("%zu blueprint(s) loaded from %s", set.n, p->conf.blueprints);
    return 0;
}

/* a worker claims jobs under a name of its own: "<id>-w<n>" */
static void
worker_id(struct prov *p)
{
    char base[sizeof(p->conf.id)];

    if (p->worker > 0) {
        snprintf(base, sizeof(base), "%s", p->conf.id);
        snprintf(p->conf.id, sizeof(p->conf.id), "%.100s-w%d", base,
                 p->worker);
    }
}

static void
reload(struct prov *p)
{
    struct conf next = p->conf;

    if (p->conf_path != NULL) {
        if (conf_load(&next, p->conf_path) != 0) {
            log_err("configuration reload failed, keeping the old one");
            return;
        }
        /* the driver keeps a pointer to the conf: same struct, new values */
        p->conf = next;
        worker_id(p);
        log_info("configuration reloaded from %s", p->conf_path);
        conf_check_ports(&p->conf);
    }
    load_blueprints(p);
}

/* claims and runs jobs until none is left */
static void
work(struct prov *p)
{
    struct job j;
    int        rc;

    while (!stop_requested && (rc = job_claim(p, &j)) == 0) {
        task_run(p, &j);
        job_unlock(p, &j);
        job_free(&j);
    }
}

/* how many notifications were waiting; each one only means "look again" */
static int
drain_notifications(PGconn *conn)
{
    PGnotify *n;
    int       count = 0;

    while ((n = PQnotifies(conn)) != NULL) {
        log_debug("notification on \"%s\": %s", n->relname, n->extra);
        PQfreemem(n);
        count++;
    }
    return count;
}

/*
 * Workers run jobs side by side (workers = N): each is a process of its
 * own with its own registry connection, claiming like any provisioner
 * does. The daemon itself also runs jobs, reconciles, publishes the
 * blueprints and keeps its workers alive. A worker dies with the daemon
 * (PR_SET_PDEATHSIG), releasing its job as on SIGTERM.
 */
static void
spawn_worker(struct prov *p, int slot)
{
    pid_t parent = getpid(), pid;
    int   rc;

    pid = fork();
    if (pid < 0) {
        log_err("cannot start worker %d: fork: %s", slot + 1, strerror(errno));
        return;
    }
    if (pid > 0) {
        worker_pid[slot] = pid;
        worker_started[slot] = now_s();
        log_info("worker %d started (pid %ld)", slot + 1, (long) pid);
        return;
    }

    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) {
        _exit(1);
    }
    /* the daemon's connection is the daemon's: let go of our copy only */
    if (p->conn != NULL) {
        close(PQsocket(p->conn));
        p->conn = NULL;
    }
    memset(worker_pid, 0, sizeof(worker_pid));
    p->worker = slot + 1;
    worker_id(p);

    p->conn = connect_listening(p);
    rc = serve(p);
    if (p->conn != NULL) {
        PQfinish(p->conn);
    }
    driver_free(p->driver);
    blueprints_free(&p->blueprints);
    json_decref(p->runtime_dirs);
    exit(rc);
}

/* restarts a worker that is gone, at most once a second per slot */
static void
supervise(struct prov *p)
{
    int i, status;

    for (i = 0; i < p->conf.workers - 1 && i < MAX_WORKERS; i++) {
        if (worker_pid[i] > 0
            && (waitpid(worker_pid[i], &status, WNOHANG) == worker_pid[i]
                || (kill(worker_pid[i], 0) != 0 && errno == ESRCH)))
        {
            log_warn("worker %d (pid %ld) is gone", i + 1,
                     (long) worker_pid[i]);
            worker_pid[i] = 0;
        }
        if (worker_pid[i] == 0 && !stop_requested
            && now_s() - worker_started[i] >= 1)
        {
            spawn_worker(p, i);
        }
    }
}

static void
stop_workers(void)
{
    int i, n;

    for (i = 0; i < MAX_WORKERS; i++) {
        if (worker_pid[i] > 0) {
            kill(worker_pid[i], SIGTERM);
        }
    }
    /* they finish their step and release their job: up to 30 s each */
    for (i = 0; i < MAX_WORKERS; i++) {
        for (n = 0; worker_pid[i] > 0 && n < 300; n++) {
            struct timespec ts = { 0, 100 * 1000000L };

            if (waitpid(worker_pid[i], NULL, WNOHANG) == worker_pid[i]
                || (kill(worker_pid[i], 0) != 0 && errno == ESRCH))
            {
                break;
            }
            nanosleep(&ts, NULL);
        }
        if (worker_pid[i] > 0 && kill(worker_pid[i], 0) == 0) {
            kill(worker_pid[i], SIGKILL);
            waitpid(worker_pid[i], NULL, 0);
        }
        worker_pid[i] = 0;
    }
}

static void
forward(int sig)
{
    int i;

    for (i = 0; i < MAX_WORKERS; i++) {
        if (worker_pid[i] > 0) {
            kill(worker_pid[i], sig);
        }
    }
}

int
run_daemon(struct prov *p)
{
    int i, rc;

    p->stop = &stop_requested;

    if (install_signals() != 0) {
        return 1;
    }

    log_info("starting %s: driver \"%s\", blueprints \"%s\", %d worker(s)",
             p->conf.id, p->conf.driver, p->conf.blueprints,
             p->conf.workers);
    conf_check_ports(&p->conf);

    /* a failure here costs speed, not correctness: the daemon goes on */
    if (mkdir_top(p->conf.state_dir, 0755) < 0) {
        log_warn("cannot prepare state_dir %s: %s", p->conf.state_dir,
                 strerror(errno));
    }

    p->conn = connect_listening(p);

    if (p->conn != NULL && load_blueprints(p) != 0) {
        log_err("cannot load blueprints from %s", p->conf.blueprints);
    }

    if (p->conn != NULL && p->have_key && tenant_secrets_bind(p) < 0) {
        log_err("cannot bind the registry's older secrets to their tenants "
                "(they still decrypt; retried at the next start)");
    }

    for (i = 0; p->conn != NULL && i < p->conf.workers - 1
                && i < MAX_WORKERS; i++)
    {
        spawn_worker(p, i);
    }

    rc = serve(p);

    stop_workers();

    if (p->conn != NULL) {
        PQfinish(p->conn);
        p->conn = NULL;
    }

    log_info("stopped");
    return rc;
}

/* the loop of the daemon and of each worker */
static int
serve(struct prov *p)
{
    struct pollfd   pfd;
    double          next_reconcile = 0, next_check = 0, next_backup = 0,
                    next_jwks = 0, wait;
    struct check    checks[CHECKS_MAX];
    int             rc, nchecks;

    while (!stop_requested && p->conn != NULL) {
        if (reload_requested) {
            reload_requested = 0;
            reload(p);
            forward(SIGHUP);
        }

        work(p);

        if (p->worker == 0 && !stop_requested && now_s() >= next_reconcile) {
            if (reconcile(p) != 0) {
                log_warn("reconcile pass failed");
            }
            if (domains_verify(p) < 0) {
                log_warn("domain verification pass failed");
            }
            if (acme_schedule(p) < 0) {
                log_warn("certificate scheduling pass failed");
            }
            next_reconcile = now_s() + p->conf.reconcile_interval;
        }

        if (p->worker == 0 && !stop_requested && now_s() >= next_backup) {
            if (backup_schedule(p) < 0) {
                log_warn("backup scheduling pass failed");
            }
            next_backup = now_s() + p->conf.backup_pass_interval;
        }

        if (p->worker == 0 && !stop_requested && now_s() >= next_jwks) {
            if (jwks_refresh(p) < 0) {
                log_warn("JWKS refresh pass failed");
            }
            next_jwks = now_s() + p->conf.jwks_pass_interval;
        }

        if (p->worker == 0 && !stop_requested && now_s() >= next_check) {
            /* a check that fails is in what is stored; the store itself
             * failing is the registry's trouble, logged by it */
            (void) checks_run(p, checks, &nchecks);
            if (checks_store(p, checks, nchecks) != 0) {
                log_warn("storing the health checks failed");
            }
            if (prov_metrics_write(p, checks, nchecks) != 0) {
                log_warn("writing metrics_file %s failed",
                         p->conf.metrics_file);
            }
            next_check = now_s() + p->conf.check_interval;
        }

        p->driver->ops->tick(p->driver);

        if (p->worker == 0) {
            supervise(p);
        }

        /*
         * A "jobs" notification that arrived during the work or the
         * reconcile pass sits in libpq's buffer, not on the socket: poll()
         * would not see it. Look before sleeping.
         */
        if (PQconsumeInput(p->conn) == 0) {
            log_warn("registry connection lost: %s", PQerrorMessage(p->conn));
            PQfinish(p->conn);
            p->conn = connect_listening(p);
            continue;
        }
        if (drain_notifications(p->conn) > 0) {
            continue;
        }

        /* wake for a notification, the next reconcile, or the slow poll */
        wait = p->worker == 0 ? next_reconcile - now_s()
                              : p->conf.poll_interval;
        if (wait > p->conf.poll_interval) {
            wait = p->conf.poll_interval;
        }
        if (p->worker == 0 && p->conf.workers > 1 && wait > 1) {
            wait = 1;   /* a dead worker is restarted within a second */
        }
        if (wait < 0.05) {
            wait = 0.05;
        }

        pfd.fd = PQsocket(p->conn);
        pfd.events = POLLIN;
        pfd.revents = 0;

        rc = poll(&pfd, 1, (int) (wait * 1000));
        if (rc < 0 && errno != EINTR) {
            log_err("poll: %s", strerror(errno));
            return 1;
        }

        if (PQconsumeInput(p->conn) == 0
            || PQstatus(p->conn) != CONNECTION_OK)
        {
            log_warn("registry connection lost: %s", PQerrorMessage(p->conn));
            PQfinish(p->conn);
            p->conn = connect_listening(p);
            continue;
        }

        drain_notifications(p->conn);
    }

    return 0;
}
