#ifndef PROV_ACME_CRYPTO_H
#define PROV_ACME_CRYPTO_H

/*
 * What ACME (RFC 8555) asks of the client's keys: ES256 JSON Web
 * Signatures (RFC 7515) over the requests, the account key as a JWK and
 * its thumbprint (RFC 7638) in key authorisations, and a CSR for the
 * certificate's own key. Keys are ECDSA P-256 throughout.
 */

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>

/* base64url without padding (RFC 7515 §2): the length written, or -1 when
 * dst (NUL included) is too small */
int acme_b64url(char *dst, size_t size, const unsigned char *src, size_t n);

EVP_PKEY *acme_key_new(void);
/* PKCS#8 PEM, malloc'd and NUL-terminated (wipe before free), or NULL */
char *acme_key_pem(EVP_PKEY *key, size_t *len);
EVP_PKEY *acme_key_from_pem(const char *pem, size_t len);

/* {"crv","kty","x","y"}, the members in the order RFC 7638 hashes them */
json_t *acme_jwk(EVP_PKEY *key);
/* base64url SHA-256 of the JWK: 43 characters and a NUL */
int acme_thumbprint(EVP_PKEY *key, char out[64]);

/*
 * A flattened JWS (the request body): protected header {alg, kid or jwk,
 * nonce, url}, payload "" for POST-as-GET. malloc'd, or NULL.
 */
char *acme_jws(EVP_PKEY *key, const char *kid, const char *nonce,
               const char *url, const char *payload);

/* base64url DER of a CSR for host signed by key, malloc'd, or NULL */
char *acme_csr(EVP_PKEY *key, const char *host);

/* base64url SHA-256 of s: the TXT value of a DNS-01 challenge */
int acme_txt_digest(const char *s, char out[64]);

#endif
