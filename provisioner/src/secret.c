#define _GNU_SOURCE

#include "secret.h"
#include "log.h"
#include "tenant_seal.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

void
hex_encode(char *dst, const unsigned char *src, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t            i;

    for (i = 0; i < n; i++) {
        dst[2 * i] = digits[src[i] >> 4];
        dst[2 * i + 1] = digits[src[i] & 0xf];
    }
    dst[2 * n] = '\0';
}

/* "\x" and 2n hex digits, a bytea parameter: dst holds 2n + 3 */
void
bytea_hex(char *dst, const unsigned char *src, size_t n)
{
    dst[0] = '\\';
    dst[1] = 'x';
    hex_encode(dst + 2, src, n);
}

int
secret_key_load(const char *path, unsigned char key[SECRET_KEY_BYTES])
{
    char  err[512];

    if (path == NULL || *path == '\0') {
        log_err("secret_key is not set in the config: it is needed to keep "
                "tenant secrets encrypted");
        return -1;
    }

    if (tenant_seal_key_load(path, key, err, sizeof(err)) != 0) {
        log_err("secret_key %s", err);
        return -1;
    }

    return 0;
}

/* "ngx_tenant/1" NUL tenant NUL name: no two (tenant, name) pairs alike;
 * tenant NULL: none, the unbound form; the length, or 0 if too long */
static size_t
secret_aad(unsigned char *aad, const char *tenant, const char *name)
{
    size_t  tl, nl;

    if (tenant == NULL) {
        return 0;
    }
    tl = strlen(tenant);
    nl = strlen(name);
    if (tl > 64 || nl > 64) {
        return 0;
    }
    memcpy(aad, "ngx_tenant/1", 13);
    memcpy(aad + 13, tenant, tl + 1);
    memcpy(aad + 13 + tl + 1, name, nl);
    return 13 + tl + 1 + nl;
}

int
secret_encrypt(const unsigned char key[SECRET_KEY_BYTES], const char *tenant,
               const char *name, const char *plain, size_t len,
               unsigned char nonce[SECRET_NONCE_BYTES], unsigned char *out)
{
    unsigned char  aad[16 + 64 + 1 + 64];
    size_t         alen;

    alen = secret_aad(aad, tenant, name);
    if (tenant != NULL && alen == 0) {
        log_err("encrypt: tenant or secret name too long");
        return -1;
    }
    if (tenant_seal(key, aad, alen, (const unsigned char *) plain, len, nonce,
                    out) != 0)
    {
        log_err("encrypt: AES-256-GCM failed");
        return -1;
    }
    return 0;
}

int
secret_decrypt(const unsigned char key[SECRET_KEY_BYTES], const char *tenant,
               const char *name, const unsigned char nonce[SECRET_NONCE_BYTES],
               const unsigned char *in, size_t len, char *plain)
{
    unsigned char  aad[16 + 64 + 1 + 64];
    size_t         alen;

    if (len < SECRET_TAG_BYTES) {
        log_err("decrypt: ciphertext too short");
        return -1;
    }
    alen = secret_aad(aad, tenant, name);
    if ((tenant != NULL && alen == 0)
        || tenant_unseal(key, aad, alen, nonce, in, len,
                         (unsigned char *) plain) != 0)
    {
        /* the key changed, or the row was tampered with or moved */
        log_err("decrypt: authentication failed (wrong secret_key, or a "
                "secret not stored for %s/%s?)", tenant ? tenant : "-",
                name ? name : "-");
        return -1;
    }
    plain[len - SECRET_TAG_BYTES] = '\0';
    return 0;
}

int
secret_password(char *buf, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char     r;
    size_t            i = 0;

    /* rejection sampling keeps every character equally likely */
    while (i < len) {
        if (RAND_bytes(&r, 1) != 1) {
            log_err("password: RAND_bytes failed");
            return -1;
        }
        if (r < 248) {
            buf[i++] = alphabet[r % 62];
        }
    }
    buf[len] = '\0';
    return 0;
}
