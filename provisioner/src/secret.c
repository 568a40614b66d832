#define _GNU_SOURCE

#include "secret.h"
#include "log.h"

#include <errno.h>
#include <openssl/evp.h>
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

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* decodes n bytes from 2n hex digits */
int
hex_decode(unsigned char *dst, const char *src, size_t n)
{
    size_t i;
    int    hi, lo;

    for (i = 0; i < n; i++) {
        hi = hexval(src[2 * i]);
        lo = hi < 0 ? -1 : hexval(src[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        dst[i] = (unsigned char) (hi * 16 + lo);
    }
    return 0;
}

int
secret_key_load(const char *path, unsigned char key[SECRET_KEY_BYTES])
{
    FILE   *f;
    char    buf[2 * SECRET_KEY_BYTES + 8];
    size_t  n;

    if (path == NULL || *path == '\0') {
        log_err("secret_key is not set in the config: it is needed to keep "
                "tenant secrets encrypted");
        return -1;
    }

    f = fopen(path, "r");
    if (f == NULL) {
        log_err("cannot open secret_key %s: %s", path, strerror(errno));
        return -1;
    }

    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) {
        n--;
    }

    if (n != 2 * SECRET_KEY_BYTES
        || hex_decode(key, buf, SECRET_KEY_BYTES) != 0)
    {
        explicit_bzero(buf, sizeof(buf));
        explicit_bzero(key, SECRET_KEY_BYTES);
        log_err("secret_key %s: expected %d hex digits", path,
                2 * SECRET_KEY_BYTES);
        return -1;
    }

    explicit_bzero(buf, sizeof(buf));
    return 0;
}

/* "ngx_tenant/1" NUL tenant NUL name: no two (tenant, name) pairs alike */
static int
secret_aad(EVP_CIPHER_CTX *ctx, int encrypt, const char *tenant,
           const char *name)
{
    unsigned char  aad[16 + 64 + 1 + 64 + 1];
    size_t         tl, nl;
    int            n;

    if (tenant == NULL) {
        return 1;
    }
    tl = strlen(tenant);
    nl = strlen(name);
    if (tl > 64 || nl > 64) {
        return 0;
    }
    memcpy(aad, "ngx_tenant/1", 13);
    memcpy(aad + 13, tenant, tl + 1);
    memcpy(aad + 13 + tl + 1, name, nl);

    return encrypt
           ? EVP_EncryptUpdate(ctx, NULL, &n, aad, (int) (13 + tl + 1 + nl))
           : EVP_DecryptUpdate(ctx, NULL, &n, aad, (int) (13 + tl + 1 + nl));
}

int
secret_encrypt(const unsigned char key[SECRET_KEY_BYTES], const char *tenant,
               const char *name, const char *plain, size_t len,
               unsigned char nonce[SECRET_NONCE_BYTES], unsigned char *out)
{
    EVP_CIPHER_CTX *ctx;
    int             n, fin, rc = -1;

    if (RAND_bytes(nonce, SECRET_NONCE_BYTES) != 1) {
        log_err("encrypt: RAND_bytes failed");
        return -1;
    }

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        log_err("encrypt: out of memory");
        return -1;
    }

    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1
        && secret_aad(ctx, 1, tenant, name) == 1
        && EVP_EncryptUpdate(ctx, out, &n, (const unsigned char *) plain,
                             (int) len) == 1
        && EVP_EncryptFinal_ex(ctx, out + n, &fin) == 1
        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRET_TAG_BYTES,
                               out + len) == 1)
    {
        rc = 0;
    } else {
        log_err("encrypt: AES-256-GCM failed");
    }

    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int
secret_decrypt(const unsigned char key[SECRET_KEY_BYTES], const char *tenant,
               const char *name, const unsigned char nonce[SECRET_NONCE_BYTES],
               const unsigned char *in, size_t len, char *plain)
{
    EVP_CIPHER_CTX *ctx;
    int             n, fin, rc = -1;
    size_t          clen;

    if (len < SECRET_TAG_BYTES) {
        log_err("decrypt: ciphertext too short");
        return -1;
    }
    clen = len - SECRET_TAG_BYTES;

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        log_err("decrypt: out of memory");
        return -1;
    }

    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1
        && secret_aad(ctx, 0, tenant, name) == 1
        && EVP_DecryptUpdate(ctx, (unsigned char *) plain, &n, in,
                             (int) clen) == 1
        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRET_TAG_BYTES,
                               (void *) (in + clen)) == 1
        && EVP_DecryptFinal_ex(ctx, (unsigned char *) plain + n, &fin) == 1)
    {
        plain[clen] = '\0';
        rc = 0;
    } else {
        /* the key changed, or the row was tampered with or moved */
        explicit_bzero(plain, clen);
        log_err("decrypt: authentication failed (wrong secret_key, or a "
                "secret not stored for %s/%s?)", tenant ? tenant : "-",
                name ? name : "-");
    }

    EVP_CIPHER_CTX_free(ctx);
    return rc;
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
