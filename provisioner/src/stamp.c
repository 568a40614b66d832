#define _POSIX_C_SOURCE 200809L

/*
 * The stamper between a tenant service and its log file: every line with
 * the UTC time it was written in front. Plain libc only: it also builds
 * alone as provisioner-logstamp (logstamp/main.c), which the process
 * driver execs for each service, so a service's group holds a small
 * program of its own name, not a second copy of the daemon.
 */

#include "stamp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STAMP_LEN  25   /* "2026-11-23T17:04:00.781Z " */
#define LINE_MAX_  8192

static size_t
stamp(char *buf)
{
    struct timespec  ts;
    struct tm        tm;
    size_t           n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t) snprintf(buf + n, 32 - n, ".%03ldZ ",
                           ts.tv_nsec / 1000000);
    return n;
}

static int
write_all(int fd, const char *p, size_t n)
{
    ssize_t w;

    while (n > 0) {
        w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

/* one line (or a piece of a long one) with its time in front */
static int
emit(int out, const char *text, size_t n)
{
    char    line[STAMP_LEN + 8 + LINE_MAX_ + 1];
    size_t  s = stamp(line);

    memcpy(line + s, text, n);
    line[s + n] = '\n';
    return write_all(out, line, s + n + 1);
}

void
stamp_lines(int in, int out)
{
    char     buf[LINE_MAX_];
    size_t   have = 0, i, start;
    ssize_t  n;

    for (;;) {
        n = read(in, buf + have, sizeof(buf) - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        have += (size_t) n;

        for (start = 0, i = 0; i < have; i++) {
            if (buf[i] == '\n') {
                if (emit(out, buf + start, i - start) != 0) {
                    return;
                }
                start = i + 1;
            }
        }
        memmove(buf, buf + start, have - start);
        have -= start;

        /* a line longer than the buffer goes out in pieces */
        if (have == sizeof(buf)) {
            if (emit(out, buf, have) != 0) {
                return;
            }
            have = 0;
        }
    }

    if (have > 0) {
        (void) emit(out, buf, have);
    }
}

