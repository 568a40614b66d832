
/*
 * Sealing for what the registry keeps and must not reveal (tenant secrets,
 * certificate keys): AES-256-GCM under a platform key read from a 0600
 * file, bound by associated data to where the value belongs.  Shared by the
 * module and the provisioner.
 */


#ifndef _TENANT_SEAL_H_INCLUDED_
#define _TENANT_SEAL_H_INCLUDED_


#include <stddef.h>


#define TENANT_SEAL_KEY    32
#define TENANT_SEAL_NONCE  12
#define TENANT_SEAL_TAG    16


/* out: len + TENANT_SEAL_TAG bytes (ciphertext, then tag); 0 or -1 */
int tenant_seal(const unsigned char key[TENANT_SEAL_KEY],
    const unsigned char *aad, size_t aadlen, const unsigned char *plain,
    size_t len, unsigned char nonce[TENANT_SEAL_NONCE], unsigned char *out);

/* plain: len - TENANT_SEAL_TAG bytes; 0, or -1 with plain wiped */
int tenant_unseal(const unsigned char key[TENANT_SEAL_KEY],
    const unsigned char *aad, size_t aadlen,
    const unsigned char nonce[TENANT_SEAL_NONCE], const unsigned char *in,
    size_t len, unsigned char *plain);

/* n bytes from 2n hex digits (either case): 0, or -1 at a non-digit */
int tenant_hex_decode(unsigned char *dst, const char *src, size_t n);

/* 64 hex digits (and a trailing newline or space) from path; 0 or -1 with
 * why in err */
int tenant_seal_key_load(const char *path, unsigned char key[TENANT_SEAL_KEY],
    char *err, size_t errlen);


#endif /* _TENANT_SEAL_H_INCLUDED_ */
