#ifndef PROV_HEALTH_H
#define PROV_HEALTH_H

#include <stddef.h>

/* polls GET path on addr (ip:port or unix:/path) until it answers below 500 */
int health_wait(const char *addr, const char *path, int timeout_s, char *err,
                size_t len);

#endif
