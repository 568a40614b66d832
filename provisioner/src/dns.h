#ifndef PROV_DNS_H
#define PROV_DNS_H

#include <stddef.h>

#define DNS_TXT_MAX  8

/*
 * The TXT strings of name (each record's strings joined), asked of
 * resolver ("ip:port", or "" for /etc/resolv.conf's). The count found (0:
 * none, the name or the record does not exist), or -1 with why in err.
 * Blocking, with a 2 s timeout: the provisioner's, never nginx's.
 */
int dns_txt(const char *resolver, const char *name,
            char values[DNS_TXT_MAX][256], char *err, size_t len);

#endif
