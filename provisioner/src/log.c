#define _POSIX_C_SOURCE 200809L

#include "log.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static enum log_level current = LOG_INFO;

static const char *const names[] = { "error", "warn", "info", "debug" };

void
log_set_level(enum log_level level)
{
    current = level;
}

/* One line per call, written with a single fprintf so lines from several
 * provisioners appending to one file do not interleave mid-line. */
void
log_msg(enum log_level level, const char *fmt, ...)
{
    char            msg[2048];
    char            stamp[32];
    struct tm       tm;
    struct timespec ts;
    va_list         ap;

    if (level > current) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

    fprintf(stderr, "%s.%03ldZ provisioner[%ld] %s: %s\n", stamp,
            ts.tv_nsec / 1000000, (long) getpid(), names[level], msg);
    fflush(stderr);
}
