
/*
 * Tenant name rules, shared by the module's admin API and the provisioner's
 * CLI so that both refuse the same names with the same words.  Plain C99,
 * no nginx types and no allocation: each half includes this directory.
 */


#ifndef _TENANT_NAMES_H_INCLUDED_
#define _TENANT_NAMES_H_INCLUDED_


#include <stddef.h>


#define TENANT_NAME_MIN   3
#define TENANT_NAME_MAX   30
#define TENANT_SLUG_MAX   64


/* NULL when valid, else why not (a static message that names the rule) */
const char *tenant_name_check(const unsigned char *s, size_t len);
const char *tenant_slug_check(const unsigned char *s, size_t len);


#endif /* _TENANT_NAMES_H_INCLUDED_ */
