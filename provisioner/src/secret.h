#ifndef PROV_SECRET_H
#define PROV_SECRET_H

#include <stddef.h>

#include "tenant_seal.h"

#define SECRET_KEY_BYTES   TENANT_SEAL_KEY
#define SECRET_NONCE_BYTES TENANT_SEAL_NONCE
#define SECRET_TAG_BYTES   TENANT_SEAL_TAG

int secret_key_load(const char *path, unsigned char key[SECRET_KEY_BYTES]);

/*
 * AES-256-GCM, each secret bound to its tenant and name as associated data:
 * a row copied to another tenant or name no longer decrypts.  tenant NULL
 * is the unbound form of rows written before migration 007 (decrypt only).
 */

/* out receives ciphertext followed by the tag: len + SECRET_TAG_BYTES */
int secret_encrypt(const unsigned char key[SECRET_KEY_BYTES],
                   const char *tenant, const char *name,
                   const char *plain, size_t len,
                   unsigned char nonce[SECRET_NONCE_BYTES],
                   unsigned char *out);
/* plain receives len - SECRET_TAG_BYTES bytes and a NUL; wiped on failure */
int secret_decrypt(const unsigned char key[SECRET_KEY_BYTES],
                   const char *tenant, const char *name,
                   const unsigned char nonce[SECRET_NONCE_BYTES],
                   const unsigned char *in, size_t len, char *plain);

/* a random password of len characters from [A-Za-z0-9] */
int secret_password(char *buf, size_t len);

void hex_encode(char *dst, const unsigned char *src, size_t n);
void bytea_hex(char *dst, const unsigned char *src, size_t n);

#endif
