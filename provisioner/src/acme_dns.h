#ifndef PROV_ACME_DNS_H
#define PROV_ACME_DNS_H

#include "prov.h"

#include <stddef.h>

/*
 * DNS-01 through the operator's hook (acme_dns_hook), whose contract is:
 *
 *     HOOK set   _acme-challenge.example.com VALUE
 *     HOOK clear _acme-challenge.example.com VALUE
 *
 * exit 0 once the TXT record holds (or no longer holds) VALUE; anything
 * else is a failure, retried. It runs without a shell, with the
 * provisioner's environment, and is killed after acme_timeout seconds.
 * After "set", when dns_resolver is configured, the provisioner waits (at
 * most acme_dns_wait seconds) until that resolver shows the value.
 */
int acme_dns_set(struct prov *p, const char *name, const char *value,
                 char *err, size_t len);
int acme_dns_clear(struct prov *p, const char *name, const char *value,
                   char *err, size_t len);

#endif
