#ifndef PROV_ACME_CLIENT_H
#define PROV_ACME_CLIENT_H

/*
 * An ACME (RFC 8555) conversation with one CA directory, over libcurl:
 * signed POSTs with nonce handling (a badNonce is retried with the fresh
 * nonce the error carries), account registration, and the CA's problem
 * documents turned into one line of error. Blocking, with timeouts: it is
 * the provisioner's, never nginx's.
 */

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>

#define ACME_URL  1024

struct acme {
    CURL       *curl;
    EVP_PKEY   *key;                     /* the account key (not owned) */
    char        new_nonce[ACME_URL];
    char        new_account[ACME_URL];
    char        new_order[ACME_URL];
    char        kid[ACME_URL];           /* the account's URL, once known */
    char        nonce[256];
    char        ca_file[512];
};

struct acme_reply {
    long        status;
    char       *body;
    size_t      len;
    json_t     *json;                    /* when the body is JSON */
    char        location[ACME_URL];
    char        link_next[ACME_URL];     /* Link: <...>;rel="next" */
    char        nonce[256];
};

/* reads the directory; 0, or -1 with why in err */
int  acme_open(struct acme *a, const char *directory, const char *ca_file,
               EVP_PKEY *key, char *err, size_t len);
void acme_close(struct acme *a);

/*
 * A signed POST of payload (NULL: POST-as-GET) to url, expecting a 2xx:
 * 0 with r filled (acme_reply_free), or -1 with the CA's problem in err.
 */
int  acme_post(struct acme *a, const char *url, const char *payload,
               struct acme_reply *r, char *err, size_t len);
void acme_reply_free(struct acme_reply *r);

/* the account of a->key: created, or found (the CA answers the same URL
 * for the same key); sets a->kid */
int  acme_account(struct acme *a, const char *email, char *err, size_t len);

#endif
