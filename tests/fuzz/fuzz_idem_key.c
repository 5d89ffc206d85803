/*
 * libFuzzer: the Idempotency-Key header.  An accepted key is 1..255 bytes
 * of 0x20-0x7e, NUL-terminated, and quoting it again (escaping \ and ")
 * yields a header that parses to the same key.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <payments/idempotency.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char    out[PAY_IDEM_KEY_MAX + 1], again[PAY_IDEM_KEY_MAX + 1];
    char    quoted[2 * PAY_IDEM_KEY_MAX + 3];
    size_t  n, n2, i, q;

    memset(out, 'X', sizeof(out));

    if (pay_idem_key_parse((const char *) data, size, out, &n) != 0) {
        return 0;
    }

    if (n == 0 || n > PAY_IDEM_KEY_MAX || out[n] != '\0'
        || strlen(out) != n)
    {
        abort();
    }

    q = 0;
    quoted[q++] = '"';

    for (i = 0; i < n; i++) {
        if ((unsigned char) out[i] < 0x20 || (unsigned char) out[i] > 0x7e) {
            abort();
        }

        if (out[i] == '"' || out[i] == '\\') {
            quoted[q++] = '\\';
        }

        quoted[q++] = out[i];
    }

    quoted[q++] = '"';

    if (pay_idem_key_parse(quoted, q, again, &n2) != 0 || n2 != n
        || memcmp(out, again, n) != 0)
    {
        abort();
    }

    return 0;
}
