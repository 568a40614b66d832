#ifndef PROV_CHECK_PROBE_H
#define PROV_CHECK_PROBE_H

/*
 * Connects to each address (ip:port, [v6]:port or unix:/path) at once,
 * non-blocking, and waits up to timeout_ms for them all; up[i] is 1 for
 * an address that accepted. Returns how many did not.
 */
int check_probe(const char *const *addrs, int n, int timeout_ms, int *up);

#endif
