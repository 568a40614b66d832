#ifndef PROV_HEALTH_H
#define PROV_HEALTH_H

#include <signal.h>

#include <stddef.h>

/*
 * Polls GET path on addr (ip:port or unix:/path) until it answers below
 * 500, the timeout passes, or *stop is set (shutdown).
 */
int health_wait(const char *addr, const char *path, int timeout_s,
                volatile sig_atomic_t *stop, char *err, size_t len);

/* the same, sending X-Tenant-ID: tenant (if not NULL), until the status is
 * below `below` */
int health_wait_for(const char *addr, const char *path, const char *tenant,
                    int below, int timeout_s, volatile sig_atomic_t *stop, char *err,
                    size_t len);

#endif
