#define _POSIX_C_SOURCE 200809L

#include "run.h"
#include "db.h"
#include "log.h"

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

/* Connects and LISTENs, retrying with capped exponential backoff: the
 * registry may start after us or restart under us. */
static PGconn *
connect_listening(struct conf *conf)
{
    PGconn *conn;
    long    backoff = 100;

    while (!stop_requested) {
        conn = db_connect(conf->db);
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

int
run_daemon(struct conf *conf, const char *conf_path)
{
    PGconn         *conn;
    PGnotify       *n;
    struct pollfd   pfd;
    int             rc;

    if (install_signals() != 0) {
        return 1;
    }

    log_info("starting: driver \"%s\", blueprints \"%s\"", conf->driver,
             conf->blueprints);

    conn = connect_listening(conf);

    while (!stop_requested && conn != NULL) {
        if (reload_requested) {
            reload_requested = 0;
            if (conf_path != NULL) {
                struct conf next = *conf;

                if (conf_load(&next, conf_path) == 0) {
                    *conf = next;
                    log_info("configuration reloaded from %s", conf_path);
                } else {
                    log_err("configuration reload failed, keeping the old one");
                }
            }
        }

        pfd.fd = PQsocket(conn);
        pfd.events = POLLIN;
        pfd.revents = 0;

        rc = poll(&pfd, 1, conf->poll_interval * 1000);
        if (rc < 0 && errno != EINTR) {
            log_err("poll: %s", strerror(errno));
            break;
        }

        if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK) {
            log_warn("registry connection lost: %s", PQerrorMessage(conn));
            PQfinish(conn);
            conn = connect_listening(conf);
            continue;
        }

        while ((n = PQnotifies(conn)) != NULL) {
            log_debug("notification on \"%s\": %s", n->relname, n->extra);
            PQfreemem(n);
        }

        /* job execution lands with the job runner (issue 6) */
    }

    if (conn != NULL) {
        PQfinish(conn);
    }

    log_info("stopped");
    return 0;
}
