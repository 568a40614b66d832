#ifndef PROV_NAMES_H
#define PROV_NAMES_H

/*
 * Tenant name rules, the admin API's own: the pattern and the reserved
 * names come from ngx_tenant_module/ngx_http_tenant_reserved.h.
 * NULL when valid, else why not.
 */
const char *name_check(const char *name);

#endif
