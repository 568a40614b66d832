#ifndef PROV_FSUTIL_H
#define PROV_FSUTIL_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

int  mkdirs(const char *base, const char *rel, mode_t mode);
/* makes dir a hierarchy top: its subdirectories spread over the disk */
int  mkdir_top(const char *dir, mode_t mode);
int  rmtree(const char *dir);
int  write_file(const char *file, const char *data, size_t len, mode_t mode);
char *read_file(const char *file, size_t max, size_t *len);
/* appends {"service", "line"} objects for the last lines of file */
int  tail_lines(const char *file, int lines, const char *service, json_t *out);
void cap_file(const char *file, long cap);

#endif
