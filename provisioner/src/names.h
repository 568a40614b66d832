#ifndef PROV_NAMES_H
#define PROV_NAMES_H

/*
 * Tenant name rules, the same as the admin API's (ngx_tenant_module/
 * ngx_http_tenant_api_validate.c); t/62-cli.t checks both refuse alike.
 * NULL when valid, else why not.
 */
const char *name_check(const char *name);

#endif
