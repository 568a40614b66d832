#ifndef PROV_LOGLINE_H
#define PROV_LOGLINE_H

#include <jansson.h>
#include <stddef.h>

/* copies lines from in to out, each with its UTC time in front; until EOF */
void    logline_stamp(int in, int out);

/* {"service", "at" (the line's time, or null), "line"} */
json_t *logline_json(const char *service, const char *line, size_t len);

#endif
