/*
 * libFuzzer: a notification endpoint's URL (pay_endpoint_url_check).  An
 * accepted URL starts with https:// (any case), holds no byte outside
 * 0x21..0x7e, no '#', no '@' before its path or query, and its host is non-empty, lower case, at most
 * 253 characters, and never an address pay_addr_forbidden refuses.  Also
 * the sealed-value opener on outside bytes (a database row is outside
 * bytes to the gateway).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <payments/notify.h>
#include <payments/seal.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                 host[256], out[512];
    size_t               i, n;
    const char          *why;
    pay_keyring_t        kr;
    struct sockaddr_in   in4;

    memset(&kr, 0, sizeof(kr));
    kr.n = 1;
    strcpy(kr.keys[0].kid, "k0");
    (void) pay_unseal(&kr, "ad", (const char *) data, size, out, sizeof(out),
                      &n);

    if (pay_endpoint_url_check((const char *) data, size, 0, host,
                               sizeof(host), &why) != 0)
    {
        if (why == NULL) {
            abort();
        }

        return 0;
    }

    if (size < 9 || strncasecmp((const char *) data, "https://", 8) != 0) {
        abort();
    }

    for (i = 0; i < size; i++) {
        if (data[i] <= 0x20 || data[i] >= 0x7f || data[i] == '#') {
            abort();
        }
    }

    for (i = 8; i < size && data[i] != '/' && data[i] != '?'; i++) {
        if (data[i] == '@') {
            abort();    /* user information */
        }
    }

    n = strlen(host);

    if (n == 0 || n > 253) {
        abort();
    }

    for (i = 0; i < n; i++) {
        if (host[i] >= 'A' && host[i] <= 'Z') {
            abort();
        }
    }

    memset(&in4, 0, sizeof(in4));
    in4.sin_family = AF_INET;

    if (inet_pton(AF_INET, host, &in4.sin_addr) == 1
        && pay_addr_forbidden((struct sockaddr *) &in4, 0))
    {
        abort();
    }

    return 0;
}
