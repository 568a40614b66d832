#ifndef PROV_HEALTH_H
#define PROV_HEALTH_H

#include <stddef.h>

/*
 * Polls GET path on addr (ip:port or unix:/path) until it answers below
 * 500, the timeout passes, or *stop is set (shutdown).
 */
int health_wait(const char *addr, const char *path, int timeout_s,
                volatile int *stop, char *err, size_t len);

#endif
