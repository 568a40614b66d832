#define _POSIX_C_SOURCE 200809L

/*
 * Tenant services' output lines, read back for the logs API: the time the
 * stamper (stamp.c) put in front, split from the text.
 */

#include "logline.h"

#include <string.h>

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
