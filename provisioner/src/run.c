#define _POSIX_C_SOURCE 200809L

#include "run.h"
#include "db.h"
#include "jobs.h"
#include "log.h"
#include "reconcile.h"
#include "tasks.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void
on_signal(int sig)
{
    if (sig == SIGHUP) {
        reload_requested = 1;
    } else {
        stop_requested = 1;
        tasks_stopping = 1;
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
    if (p->conn && blueprints_sync(p->conn, &set, p->conf.id, p->driver->name) != 0) {
        log_err("blueprints loaded but not published to the registry");
    }
    blueprints_free(&p->blueprints);
    p->blueprints = set;
    log_info("%zu blueprint(s) loaded from %s", set.n, p->conf.blueprints);
    return 0;
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

    while (!stop_requested && (rc = job_claim(p, &j)) == 1) {
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

int
run_daemon(struct prov *p)
{
    struct pollfd   pfd;
    double          next_reconcile = 0, wait;
    int             rc;

    if (install_signals() != 0) {
        return 1;
    }

    log_info("starting %s: driver \"%s\", blueprints \"%s\"", p->conf.id,
             p->conf.driver, p->conf.blueprints);
    conf_check_ports(&p->conf);

    p->conn = connect_listening(p);

    if (p->conn != NULL && load_blueprints(p) != 0) {
        log_err("cannot load blueprints from %s", p->conf.blueprints);
    }

    while (!stop_requested && p->conn != NULL) {
        if (reload_requested) {
            reload_requested = 0;
            reload(p);
        }

        work(p);

        if (!stop_requested && now_s() >= next_reconcile) {
            if (reconcile(p) != 0) {
                log_warn("reconcile pass failed");
            }
            next_reconcile = now_s() + p->conf.reconcile_interval;
        }

        p->driver->tick(p->driver);

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
        wait = next_reconcile - now_s();
        if (wait > p->conf.poll_interval) {
            wait = p->conf.poll_interval;
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
            break;
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

    if (p->conn != NULL) {
        PQfinish(p->conn);
        p->conn = NULL;
    }

    log_info("stopped");
    return 0;
}
