#define _GNU_SOURCE

/*
 * TXT look-ups for domain verification, through libresolv: a resolver of
 * the operator's choosing (a test's mock DNS, a validating resolver) or the
 * system's.
 */

#include "dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
set_resolver(res_state rs, const char *resolver, char *err, size_t len)
{
    char        host[64];
    const char *colon;
    long        port = 53;
    size_t      n;
    struct in_addr addr;

    colon = strrchr(resolver, ':');
    n = colon ? (size_t) (colon - resolver) : strlen(resolver);
    if (n == 0 || n >= sizeof(host)) {
        snprintf(err, len, "dns_resolver \"%s\": expected ip[:port]", resolver);
        return -1;
    }
    memcpy(host, resolver, n);
    host[n] = '\0';
    if (colon) {
        port = strtol(colon + 1, NULL, 10);
    }
    if (inet_pton(AF_INET, host, &addr) != 1 || port < 1 || port > 65535) {
        snprintf(err, len, "dns_resolver \"%s\": expected an IPv4 address "
                 "and an optional port", resolver);
        return -1;
    }
    rs->nscount = 1;
    rs->nsaddr_list[0].sin_family = AF_INET;
    rs->nsaddr_list[0].sin_addr = addr;
    rs->nsaddr_list[0].sin_port = htons((unsigned short) port);
    return 0;
}

int
dns_txt(const char *resolver, const char *name,
        char values[DNS_TXT_MAX][256], char *err, size_t len)
{
    struct __res_state  rs;
    unsigned char       answer[4096];
    const unsigned char *rd, *end;
    ns_msg              msg;
    ns_rr               rr;
    int                 n, i, count = 0;
    size_t              used, l;

    memset(&rs, 0, sizeof(rs));
    if (res_ninit(&rs) != 0) {
        snprintf(err, len, "cannot set up the resolver");
        return -1;
    }
    rs.retrans = 2;
    rs.retry = 1;
    if (resolver[0] != '\0' && set_resolver(&rs, resolver, err, len) != 0) {
        res_nclose(&rs);
        return -1;
    }

    n = res_nquery(&rs, name, ns_c_in, ns_t_txt, answer, sizeof(answer));
    res_nclose(&rs);

    if (n < 0) {
        if (rs.res_h_errno == HOST_NOT_FOUND || rs.res_h_errno == NO_DATA) {
            return 0;
        }
        snprintf(err, len, "TXT %s: %s", name, hstrerror(rs.res_h_errno));
        return -1;
    }

    if (ns_initparse(answer, n, &msg) != 0) {
        snprintf(err, len, "TXT %s: an answer that does not parse", name);
        return -1;
    }

    for (i = 0; i < ns_msg_count(msg, ns_s_an) && count < DNS_TXT_MAX; i++) {
        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0
            || ns_rr_type(rr) != ns_t_txt)
        {
            continue;
        }
        /* character-strings: a length byte, then that many bytes */
        rd = ns_rr_rdata(rr);
        end = rd + ns_rr_rdlen(rr);
        used = 0;
        while (rd < end) {
            l = *rd++;
            if (rd + l > end) {
                break;
            }
            if (used + l < sizeof(values[0])) {
                memcpy(values[count] + used, rd, l);
                used += l;
            }
            rd += l;
        }
        values[count][used] = '\0';
        count++;
    }
    return count;
}
