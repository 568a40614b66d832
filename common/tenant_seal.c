
/*
 * AES-256-GCM with a random 96-bit nonce per value: values are few and
 * rarely rewritten, so nonces never come near the birthday bound.
 */


#define _GNU_SOURCE

#include "tenant_seal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>


int
tenant_seal(const unsigned char key[TENANT_SEAL_KEY],
    const unsigned char *aad, size_t aadlen, const unsigned char *plain,
    size_t len, unsigned char nonce[TENANT_SEAL_NONCE], unsigned char *out)
{
    int              n, fin, rc;
    EVP_CIPHER_CTX  *ctx;

    if (RAND_bytes(nonce, TENANT_SEAL_NONCE) != 1) {
        return -1;
    }

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    rc = (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1
          && (aadlen == 0
              || EVP_EncryptUpdate(ctx, NULL, &n, aad, (int) aadlen) == 1)
          && EVP_EncryptUpdate(ctx, out, &n, plain, (int) len) == 1
          && EVP_EncryptFinal_ex(ctx, out + n, &fin) == 1
          && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TENANT_SEAL_TAG,
                                 out + len) == 1)
         ? 0 : -1;

    EVP_CIPHER_CTX_free(ctx);

    return rc;
}


int
tenant_unseal(const unsigned char key[TENANT_SEAL_KEY],
    const unsigned char *aad, size_t aadlen,
    const unsigned char nonce[TENANT_SEAL_NONCE], const unsigned char *in,
    size_t len, unsigned char *plain)
{
    int              n, fin, rc;
    size_t           clen;
    EVP_CIPHER_CTX  *ctx;

    if (len < TENANT_SEAL_TAG) {
        return -1;
    }

    clen = len - TENANT_SEAL_TAG;

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    rc = (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1
          && (aadlen == 0
              || EVP_DecryptUpdate(ctx, NULL, &n, aad, (int) aadlen) == 1)
          && EVP_DecryptUpdate(ctx, plain, &n, in, (int) clen) == 1
          && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TENANT_SEAL_TAG,
                                 (void *) (in + clen)) == 1
          && EVP_DecryptFinal_ex(ctx, plain + n, &fin) == 1)
         ? 0 : -1;

    EVP_CIPHER_CTX_free(ctx);

    if (rc != 0) {
        /* the key changed, or the value was altered or moved */
        explicit_bzero(plain, clen);
    }

    return rc;
}


static int
tenant_hex(char c)
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


int
tenant_hex_decode(unsigned char *dst, const char *src, size_t n)
{
    int     hi, lo;
    size_t  i;

    for (i = 0; i < n; i++) {
        hi = tenant_hex(src[2 * i]);
        lo = hi < 0 ? -1 : tenant_hex(src[2 * i + 1]);

        if (lo < 0) {
            return -1;
        }

        dst[i] = (unsigned char) (hi * 16 + lo);
    }

    return 0;
}


int
tenant_seal_key_load(const char *path, unsigned char key[TENANT_SEAL_KEY],
    char *err, size_t errlen)
{
    int           rc;
    char          buf[2 * TENANT_SEAL_KEY + 8];
    FILE         *f;
    size_t        n;
    struct stat   st;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }

    /* a key others can read is no longer the platform's alone */
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077) != 0) {
        fclose(f);
        snprintf(err, errlen, "%s may be read by others (mode %03o): it "
                 "must be 0600 (chmod 600 %s)", path,
                 (unsigned int) (st.st_mode & 0777), path);
        return -1;
    }

    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) {
        n--;
    }

    rc = (n == 2 * TENANT_SEAL_KEY)
         ? tenant_hex_decode(key, buf, TENANT_SEAL_KEY) : -1;

    explicit_bzero(buf, sizeof(buf));

    if (rc != 0) {
        explicit_bzero(key, TENANT_SEAL_KEY);
        snprintf(err, errlen, "%s: expected %d hex digits", path,
                 2 * TENANT_SEAL_KEY);
        return -1;
    }

    return 0;
}
