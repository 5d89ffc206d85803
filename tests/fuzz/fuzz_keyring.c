/*
 * libFuzzer: the key file of payments_encryption_key (it is the operator's,
 * but a truncated or mangled file must never crash nginx -t).  A parsed
 * ring has 1..8 keys with distinct, well-formed kids, and what one of its
 * keys seals the ring opens again.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <payments/seal.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           sealed[256], plain[16];
    size_t         bad, i, j, n;
    pay_keyring_t  kr;

    if (pay_keyring_parse(&kr, (const char *) data, size, &bad) != 0) {
        if (kr.n != 0) {
            abort();    /* a refused file leaves nothing behind */
        }

        return 0;
    }

    if (kr.n < 1 || kr.n > PAY_SEAL_KEYS_MAX) {
        abort();
    }

    for (i = 0; i < kr.n; i++) {
        n = strlen(kr.keys[i].kid);

        if (n < 1 || n > PAY_SEAL_KID_MAX) {
            abort();
        }

        for (j = i + 1; j < kr.n; j++) {
            if (strcmp(kr.keys[i].kid, kr.keys[j].kid) == 0) {
                abort();
            }
        }
    }

    if (pay_seal(&kr, "ad", "fuzz", 4, sealed, sizeof(sealed)) != 0
        || pay_unseal(&kr, "ad", sealed, strlen(sealed), plain, sizeof(plain),
                      &n) != 0
        || n != 4 || memcmp(plain, "fuzz", 4) != 0)
    {
        abort();
    }

    pay_keyring_wipe(&kr);

    return 0;
}
