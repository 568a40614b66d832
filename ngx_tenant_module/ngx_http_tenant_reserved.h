
/*
 * Tenant names the platform keeps for itself.  Plain C, no nginx types:
 * the admin API (ngx_http_tenant_api_validate.c) and the provisioner's CLI
 * (provisioner/src/names.c) both include it, so they refuse alike.
 */


#ifndef _NGX_HTTP_TENANT_RESERVED_H_INCLUDED_
#define _NGX_HTTP_TENANT_RESERVED_H_INCLUDED_


/* rt-* names the platform's own shared runtimes (provisioner/src/shared.c) */
#define NGX_HTTP_TENANT_NAME_RE  "^(?!-)(?!.*--)(?!rt-)[a-z0-9-]{3,30}(?<!-)$"

#define NGX_HTTP_TENANT_RESERVED                                             \
    "admin", "administrator", "api", "app", "apps", "assets", "auth",        \
    "billing", "blog-admin", "cdn", "console", "dashboard", "dev", "dns",    \
    "docs", "email", "ftp", "git", "help", "imap", "internal", "localhost",  \
    "login", "mail", "mx", "ns1", "ns2", "pop", "pop3", "postmaster",        \
    "root", "smtp", "staff", "static", "status", "superadmin", "support",    \
    "sysadmin", "system", "tenant", "tenants", "test", "webmail", "www",     \
    NULL


#endif /* _NGX_HTTP_TENANT_RESERVED_H_INCLUDED_ */
