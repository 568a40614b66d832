#define _POSIX_C_SOURCE 200809L

/*
 * Tenant services' output lines: stamped with the time they were written
 * (the process driver puts a stamper between a service and its log file),
 * and split back into time and text when the logs API reads them.
 */

#include "logline.h"

#include <errno.h>
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
logline_stamp(int in, int out)
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

/* "2026-11-23T17:04:00.781Z ..." or a Docker "...00.781234567Z ..." */
static size_t
stamp_len(const char *line, size_t len)
{
    size_t i;

    if (len < 21 || line[4] != '-' || line[7] != '-' || line[10] != 'T'
        || line[13] != ':' || line[16] != ':')
    {
        return 0;
    }
    for (i = 19; i < len && i < 40; i++) {
        if (line[i] == 'Z' && i + 1 < len && line[i + 1] == ' ') {
            return i + 1;
        }
        if (line[i] != '.' && (line[i] < '0' || line[i] > '9')) {
            return 0;
        }
    }
    return 0;
}

json_t *
logline_json(const char *service, const char *line, size_t len)
{
    size_t n = stamp_len(line, len);

    if (n == 0) {
        return json_pack("{s:s, s:n, s:s%}", "service", service, "at",
                         "line", line, len);
    }
    return json_pack("{s:s, s:s%, s:s%}", "service", service,
                     "at", line, n, "line", line + n + 1, len - n - 1);
}
