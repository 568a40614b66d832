#ifndef PROV_LOGLINE_H
#define PROV_LOGLINE_H

#include <jansson.h>
#include <stddef.h>

/* {"service", "at" (the line's time, or null), "line"} */
json_t *logline_json(const char *service, const char *line, size_t len);

#endif
