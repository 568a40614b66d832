#define _GNU_SOURCE

/*
 * `provisioner certs`: a tenant's custom-domain certificates, as the admin
 * API handles them: upload (checked with the same rules, common/tenant_cert.c,
 * the key sealed with the edges' certificate key), show (never the key),
 * delete, and what expires within N days; and the platform's own
 * certificates (a wildcard for the tenants' hosts).
 */

#include "cli_certs.h"
#include "cert_seal.h"
#include "cli.h"
#include "db.h"
#include "fsutil.h"
#include "log.h"
#include "secret.h"
#include "tenant_cert.h"
#include "tenant_names.h"
#include "tenant_seal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int
usage(const char *msg, const char *what)
{
    fprintf(stderr, "provisioner certs: %s%s%s\n", what ? what : "",
            what ? ": " : "", msg);
    return EXIT_USAGE;
}

/* the answer of certificate_put / certificate_remove / a read */
static int
print_cert(PGresult *res, const char *tenant, const char *host)
{
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        fprintf(stderr, "provisioner certs: no tenant named %s\n", tenant);
        return EXIT_NOT_FOUND;
    }
    if (PQgetisnull(res, 0, 1)) {
        fprintf(stderr, "provisioner certs: HOST: %s is not a custom domain "
                "of %s with a certificate (add the domain first: "
                "provisioner domains %s add %s)\n", host, tenant, tenant,
                host);
        return EXIT_NOT_FOUND;
    }
    printf("%s\n", PQgetvalue(res, 0, 1));
    return EXIT_OK;
}

/* tenant NULL: a platform certificate (certificate_put_platform) */
static int
upload(struct prov *p, const struct cert_args *a)
{
    char                err[1024];
    char               *pem = NULL, *kpem = NULL;
    const char         *params[11];
    size_t              plen, klen = 0;
    tenant_cert_t       cert;
    struct cert_sealed  sealed;
    PGresult           *res;
    int                 rc = EXIT_ERROR;

    if (a->cert_file == NULL) {
        return usage("is required (the PEM chain, leaf first)", "--cert");
    }
    if (a->key_file == NULL) {
        return usage("is required (the PEM private key)", "--key");
    }
    if (p->conf.certificate_key[0] == '\0') {
        return usage("certificate_key is not set in the config: the edges' "
                     "certificate key file is needed to seal the key", NULL);
    }

    pem = read_file(a->cert_file, TENANT_CERT_MAX_PEM, &plen);
    if (pem == NULL) {
        fprintf(stderr, "provisioner certs: --cert: cannot read %s: %s\n",
                a->cert_file, strerror(errno));
        rc = EXIT_USAGE;
        goto done;
    }
    kpem = read_file(a->key_file, TENANT_CERT_MAX_PEM, &klen);
    if (kpem == NULL) {
        fprintf(stderr, "provisioner certs: --key: cannot read %s: %s\n",
                a->key_file, strerror(errno));
        rc = EXIT_USAGE;
        goto done;
    }

    if (tenant_cert_check(pem, plen, kpem, klen, a->host, time(NULL), &cert,
                          err, sizeof(err)) != 0)
    {
        fprintf(stderr, "provisioner certs: --%s: %s\n",
                strncmp(err, "key", 3) == 0 ? "key" : "cert", err);
        rc = EXIT_USAGE;
        goto done;
    }

    if (cert_seal(p->conf.certificate_key, a->host, &cert, &sealed, err,
                  sizeof(err)) != 0)
    {
        log_err("certs: %s", err);
        tenant_cert_free(&cert);
        goto done;
    }

    params[0] = a->tenant;
    params[1] = a->host;
    cert_sealed_params(&sealed, &cert, params + 2);
    params[10] = "cli";

    if (a->tenant != NULL) {
        res = db_query(p->conn, "store the certificate",
                       "SELECT * FROM certificate_put($1, $2, $3::bytea,"
                       " $4::bytea, $5::bytea, $6, $7, $8,"
                       " to_timestamp($9::bigint), to_timestamp($10::bigint),"
                       " $11)", 11, params);
    } else {
        params[0] = a->host;
        cert_sealed_params(&sealed, &cert, params + 1);
        params[9] = a->host[0] == '*' ? "wildcard" : "uploaded";
        params[10] = "cli";
        res = db_query(p->conn, "store the platform certificate",
                       "SELECT NULL, certificate_put_platform($1, $2::bytea,"
                       " $3::bytea, $4::bytea, $5, $6, $7,"
                       " to_timestamp($8::bigint), to_timestamp($9::bigint),"
                       " $10, $11)", 11, params);
    }
    tenant_cert_free(&cert);
    cert_sealed_free(&sealed);
    if (res != NULL && a->tenant == NULL) {
        printf("%s\n", PQgetvalue(res, 0, 1));
        rc = EXIT_OK;
        PQclear(res);
    } else if (res != NULL) {
        rc = print_cert(res, a->tenant, a->host);
        PQclear(res);
    }

done:

    if (kpem != NULL) {
        explicit_bzero(kpem, klen);
    }
    free(pem);
    free(kpem);
    return rc;
}

int
cli_certs(struct prov *p, const struct cert_args *a)
{
    const char *params[3];
    char        days[16], host[256];
    PGresult   *res;
    size_t      i;
    int         rc;

    if (a->sub == NULL) {
        return usage("upload TENANT HOST --cert FILE --key FILE | platform "
                     "HOST --cert FILE --key FILE | show TENANT HOST | delete "
                     "TENANT HOST | expiring [--days N]", "what");
    }

    if (strcmp(a->sub, "expiring") == 0) {
        snprintf(days, sizeof(days), "%d", a->days);
        params[0] = days;
        res = db_query(p->conn, "list expiring certificates",
                       "SELECT certificate_expiring($1::int, 1000)", 1,
                       params);
        if (res == NULL) {
            return EXIT_ERROR;
        }
        printf("%s\n", PQgetvalue(res, 0, 0));
        PQclear(res);
        return EXIT_OK;
    }

    if (strcmp(a->sub, "platform") == 0) {
        struct cert_args b = *a;

        /* "*.parent" or a name: lower case, the DNS characters only */
        if (a->tenant == NULL || strlen(a->tenant) >= sizeof(host)
            || strspn(a->tenant, "*.-abcdefghijklmnopqrstuvwxyz0123456789")
               != strlen(a->tenant)
            || strchr(a->tenant + 1, '*') != NULL
            || (a->tenant[0] == '*' && a->tenant[1] != '.'))
        {
            return usage("a host name or a wildcard like *.shop.example.com, "
                         "in lower case", "HOST");
        }
        b.tenant = NULL;
        b.host = a->tenant;
        return upload(p, &b);
    }

    if (strcmp(a->sub, "upload") != 0 && strcmp(a->sub, "show") != 0
        && strcmp(a->sub, "delete") != 0)
    {
        return usage("must be upload, platform, show, delete or expiring",
                     a->sub);
    }
    if (a->tenant == NULL
        || tenant_name_check((const unsigned char *) a->tenant,
                             strlen(a->tenant)) != NULL)
    {
        return usage("a tenant name is required (3-30 of a-z, 0-9, '-')",
                     "TENANT");
    }
    if (a->host == NULL || strlen(a->host) >= sizeof(host)) {
        return usage("a custom domain is required", "HOST");
    }
    for (i = 0; a->host[i]; i++) {
        host[i] = (char) ((a->host[i] >= 'A' && a->host[i] <= 'Z')
                          ? a->host[i] + 32 : a->host[i]);
    }
    host[i] = '\0';

    if (strcmp(a->sub, "upload") == 0) {
        struct cert_args b = *a;

        b.host = host;
        return upload(p, &b);
    }

    params[0] = a->tenant;
    params[1] = host;
    params[2] = "cli";
    if (strcmp(a->sub, "show") == 0) {
        res = db_query(p->conn, "read the certificate",
                       "SELECT (SELECT status FROM tenants WHERE id = $1),"
                       "       (SELECT certificate_json(c) FROM certificates c"
                       "         WHERE host = $2 AND tenant_id = $1)", 2,
                       params);
    } else {
        res = db_query(p->conn, "delete the certificate",
                       "SELECT * FROM certificate_remove($1, $2, $3)", 3,
                       params);
    }
    if (res == NULL) {
        return EXIT_ERROR;
    }
    rc = print_cert(res, a->tenant, host);
    PQclear(res);
    return rc;
}
