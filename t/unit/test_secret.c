
/*
 * Unit tests for tenant secrets (provisioner/src/secret.c): each secret is
 * bound to its tenant and name, a moved or altered one does not decrypt,
 * and a failed decryption leaves no plaintext behind; prints TAP.
 *
 * Run as "test_secret unbound KEYHEX PLAINTEXT" it prints "NONCEHEX CTHEX"
 * of a secret in the unbound form written before migration 007, for
 * t/60-provisioner.t to plant one.
 *
 * sources: provisioner/src/secret.c provisioner/src/log.c common/tenant_seal.c
 * libs: -lcrypto
 */


#include "secret.h"

#include <stdio.h>
#include <string.h>


static int  ntests;


static void
ok(int cond, const char *what)
{
    ntests++;
    printf("%s %d - %s\n", cond ? "ok" : "not ok", ntests, what);
}


static int
unbound(const char *keyhex, const char *plain)
{
    unsigned char  key[SECRET_KEY_BYTES], nonce[SECRET_NONCE_BYTES];
    unsigned char  ct[256 + SECRET_TAG_BYTES];
    char           hex[2 * sizeof(ct) + 1];
    size_t         len = strlen(plain);

    if (strlen(keyhex) != 2 * SECRET_KEY_BYTES || len > 256
        || tenant_hex_decode(key, keyhex, SECRET_KEY_BYTES) != 0
        || secret_encrypt(key, NULL, NULL, plain, len, nonce, ct) != 0)
    {
        fprintf(stderr, "usage: test_secret unbound KEYHEX PLAINTEXT\n");
        return 2;
    }
    hex_encode(hex, nonce, SECRET_NONCE_BYTES);
    printf("%s ", hex);
    hex_encode(hex, ct, len + SECRET_TAG_BYTES);
    printf("%s\n", hex);
    return 0;
}


int
main(int argc, char **argv)
{
    unsigned char  key[SECRET_KEY_BYTES], other[SECRET_KEY_BYTES];
    unsigned char  nonce[SECRET_NONCE_BYTES], nonce2[SECRET_NONCE_BYTES];
    unsigned char  ct[32 + SECRET_TAG_BYTES], ct2[32 + SECRET_TAG_BYTES];
    char           plain[64];
    const char    *pw = "0123456789abcdefghijABCDEFGHIJ01";
    size_t         i, len = 32;

    if (argc == 4 && strcmp(argv[1], "unbound") == 0) {
        return unbound(argv[2], argv[3]);
    }

    for (i = 0; i < sizeof(key); i++) {
        key[i] = (unsigned char) (i * 7 + 1);
        other[i] = key[i];
    }
    other[0] ^= 1;

    printf("1..11\n");

    ok(secret_encrypt(key, "shop1", "db_password", pw, len, nonce, ct) == 0,
       "encrypts");
    ok(memcmp(ct, pw, len) != 0, "the ciphertext is not the plaintext");

    memset(plain, 'x', sizeof(plain));
    ok(secret_decrypt(key, "shop1", "db_password", nonce, ct, sizeof(ct),
                      plain) == 0
       && strcmp(plain, pw) == 0, "decrypts for its own tenant and name");

    memset(plain, 'x', sizeof(plain));
    ok(secret_decrypt(key, "shop2", "db_password", nonce, ct, sizeof(ct),
                      plain) != 0, "does not decrypt as another tenant's");
    for (i = 0; i < len && plain[i] == 0; i++) { /* void */ }
    ok(i == len, "and leaves no plaintext behind");

    ok(secret_decrypt(key, "shop1", "app_key", nonce, ct, sizeof(ct),
                      plain) != 0, "does not decrypt under another name");

    /* "a" + "bc" and "ab" + "c" must not be one associated data */
    ok(secret_encrypt(key, "ab", "c", pw, len, nonce2, ct2) == 0
       && secret_decrypt(key, "a", "bc", nonce2, ct2, sizeof(ct2), plain)
          != 0, "tenant and name are separated, not concatenated");

    ok(secret_decrypt(other, "shop1", "db_password", nonce, ct, sizeof(ct),
                      plain) != 0, "does not decrypt under another key");

    ct[3] ^= 0x40;
    ok(secret_decrypt(key, "shop1", "db_password", nonce, ct, sizeof(ct),
                      plain) != 0, "an altered ciphertext does not decrypt");
    ct[3] ^= 0x40;

    /* the unbound form of older rows: readable, but only unbound */
    ok(secret_encrypt(key, NULL, NULL, pw, len, nonce2, ct2) == 0
       && secret_decrypt(key, NULL, NULL, nonce2, ct2, sizeof(ct2), plain)
          == 0 && strcmp(plain, pw) == 0, "the unbound form round-trips");
    ok(secret_decrypt(key, "shop1", "db_password", nonce2, ct2, sizeof(ct2),
                      plain) != 0, "an unbound secret is not read as bound");

    return 0;
}
