
/*
 * TLS tools for auto/bench (not part of the module or the tests):
 *
 *   tls_bench gen N CA.crt CA.key CERTKEY.hex OUT
 *       N ECDSA P-256 leaves for bench1.tls ... benchN.tls, signed by the
 *       CA, their keys sealed as the admin API seals them, written as
 *       COPY rows for the certificates table
 *   tls_bench hs PORT SECONDS PROCS N
 *       full handshakes (no session reuse) from PROCS processes, each with
 *       a random SNI among bench1.tls ... benchN.tls (N 0: no SNI);
 *       prints "handshakes H errors E"
 *   tls_bench warm PORT N
 *       one handshake for each of bench1.tls ... benchN.tls, in order
 *   tls_bench watch PORT SNI
 *       handshakes with SNI until the leaf served changes; prints "ready"
 *       once it has the first, then the wall-clock time (s) it saw another
 */


#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tenant_seal.h"


static void
hex(FILE *f, const unsigned char *p, size_t n)
{
    size_t  i;

    fputs("\\\\x", f);
    for (i = 0; i < n; i++) {
        fprintf(f, "%02x", p[i]);
    }
}


static int
gen(int n, const char *ca_crt, const char *ca_key, const char *keyhex,
    const char *out)
{
    int             i, len;
    char            host[64], err[256];
    FILE           *f, *o;
    X509           *ca, *x;
    EVP_PKEY       *cakey, *key;
    X509_NAME      *name;
    X509_EXTENSION *ext;
    unsigned char   sealkey[TENANT_SEAL_KEY], nonce[TENANT_SEAL_NONCE];
    unsigned char   der[4096], *p, ct[512], aad[300];
    char            san[100];

    if (tenant_seal_key_load(keyhex, sealkey, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    f = fopen(ca_crt, "r");
    ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    f = fopen(ca_key, "r");
    cakey = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    o = fopen(out, "w");

    if (ca == NULL || cakey == NULL || o == NULL) {
        fprintf(stderr, "cannot read the CA or write %s\n", out);
        return 1;
    }

    for (i = 1; i <= n; i++) {
        snprintf(host, sizeof(host), "bench%d.tls", i);

        key = EVP_EC_gen("P-256");
        x = X509_new();
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), i);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 30);
        X509_set_pubkey(x, key);
        name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (unsigned char *) host, -1, -1, 0);
        X509_set_issuer_name(x, X509_get_subject_name(ca));
        snprintf(san, sizeof(san), "DNS:%s", host);
        ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        X509_sign(x, cakey, EVP_sha256());

        fprintf(o, "%s\t", host);

        p = der;
        len = i2d_X509(x, &p);
        hex(o, der, len);

        p = der;
        len = i2d_PrivateKey(key, &p);
        memcpy(aad, "ngx_tenant/cert/1", 18);
        memcpy(aad + 18, host, strlen(host));
        tenant_seal(sealkey, aad, 18 + strlen(host), der, len, nonce, ct);

        fputc('\t', o);
        hex(o, nonce, TENANT_SEAL_NONCE);
        fputc('\t', o);
        hex(o, ct, len + TENANT_SEAL_TAG);
        fprintf(o, "\t%s\tCN=Bench CA\tECDSA P-256\t2020-01-01\t2099-01-01"
                "\twildcard\n", host);

        X509_free(x);
        EVP_PKEY_free(key);
    }

    fclose(o);
    return 0;
}


static int
hs(int port, int secs, int procs, int n)
{
    int                 i, k, fd, pfd[2], one = 1;
    long                ok, bad, tok = 0, tbad = 0;
    char                host[64], line[64];
    time_t              until;
    SSL_CTX            *ctx;
    SSL                *ssl;
    struct sockaddr_in  sin;

    if (pipe(pfd) != 0) {
        return 1;
    }

    for (k = 0; k < procs; k++) {
        if (fork() != 0) {
            continue;
        }

        srand(getpid());
        ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);

        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

        ok = bad = 0;
        until = time(NULL) + secs;

        while (time(NULL) < until) {
            fd = socket(AF_INET, SOCK_STREAM, 0);
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            if (connect(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
                close(fd);
                bad++;
                continue;
            }
            ssl = SSL_new(ctx);
            SSL_set_fd(ssl, fd);
            if (n > 0) {
                snprintf(host, sizeof(host), "bench%d.tls", 1 + rand() % n);
                SSL_set_tlsext_host_name(ssl, host);
            }
            if (SSL_connect(ssl) == 1) {
                ok++;
            } else {
                bad++;
                ERR_clear_error();
            }
            SSL_shutdown(ssl);
            SSL_free(ssl);
            close(fd);
        }

        i = snprintf(line, sizeof(line), "%ld %ld\n", ok, bad);
        if (write(pfd[1], line, i) != i) {
            _exit(1);
        }
        _exit(0);
    }

    close(pfd[1]);

    for (k = 0; k < procs; k++) {
        wait(NULL);
    }

    {
        FILE *f = fdopen(pfd[0], "r");

        while (f && fscanf(f, "%ld %ld", &ok, &bad) == 2) {
            tok += ok;
            tbad += bad;
        }
    }

    printf("handshakes %ld errors %ld\n", tok, tbad);
    return 0;
}


/* one full handshake; the leaf's DER into der (its length), or -1 */
static int
leaf(SSL_CTX *ctx, int port, const char *sni, unsigned char *der, int max)
{
    int                 fd, len = -1, one = 1;
    SSL                *ssl;
    X509               *x;
    unsigned char      *p;
    struct sockaddr_in  sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, sni);
    if (SSL_connect(ssl) == 1 && (x = SSL_get1_peer_certificate(ssl)) != NULL) {
        if (i2d_X509(x, NULL) <= max) {
            p = der;
            len = i2d_X509(x, &p);
        }
        X509_free(x);
    } else {
        ERR_clear_error();
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    return len;
}

static int
warm(int port, int n)
{
    int             i;
    char            host[64];
    unsigned char   der[8192];
    SSL_CTX        *ctx = SSL_CTX_new(TLS_client_method());

    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    for (i = 1; i <= n; i++) {
        snprintf(host, sizeof(host), "bench%d.tls", i);
        (void) leaf(ctx, port, host, der, sizeof(der));
    }
    return 0;
}

static int
watch(int port, const char *sni)
{
    int              len, first;
    unsigned char    der[8192], cur[8192];
    struct timespec  ts;
    SSL_CTX         *ctx = SSL_CTX_new(TLS_client_method());

    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    first = leaf(ctx, port, sni, cur, sizeof(cur));
    if (first < 0) {
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for ( ;; ) {
        len = leaf(ctx, port, sni, der, sizeof(der));
        if (len > 0 && (len != first || memcmp(der, cur, len) != 0)) {
            clock_gettime(CLOCK_REALTIME, &ts);
            printf("%ld.%06ld\n", (long) ts.tv_sec, ts.tv_nsec / 1000);
            return 0;
        }
    }
}

int
main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "warm") == 0) {
        return warm(atoi(argv[2]), atoi(argv[3]));
    }

    if (argc == 4 && strcmp(argv[1], "watch") == 0) {
        return watch(atoi(argv[2]), argv[3]);
    }

    if (argc == 7 && strcmp(argv[1], "gen") == 0) {
        return gen(atoi(argv[2]), argv[3], argv[4], argv[5], argv[6]);
    }

    if (argc == 6 && strcmp(argv[1], "hs") == 0) {
        return hs(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
                  atoi(argv[5]));
    }

    fprintf(stderr, "usage: tls_bench gen N CA.crt CA.key CERTKEY OUT\n"
                    "       tls_bench hs PORT SECONDS PROCS N\n");
    return 2;
}
