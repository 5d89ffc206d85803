/*
 * ngx_payments core: the dialect table (dialect.h).  A new PSP API is one
 * src/dialect_<name>.c and one line here.  The table is a leaf: it reads
 * the entries and calls no other file of the core; and the names the
 * database gives the events' kinds, and what the inbox keeps sealed.
 */

#include <string.h>

#include <openssl/sha.h>

#include <payments/dialect.h>


const pay_dialect_t *const  pay_dialects[] = {
    &pay_dialect_stripe,
    &pay_dialect_adyen,
    &pay_dialect_generic,
    NULL
};


const pay_dialect_t *
pay_dialect_find(const char *name, size_t len)
{
    size_t  i;

    if (name == NULL) {
        return NULL;
    }

    for (i = 0; pay_dialects[i] != NULL; i++) {
        if (strlen(pay_dialects[i]->name) == len
            && memcmp(pay_dialects[i]->name, name, len) == 0)
        {
            return pay_dialects[i];
        }
    }

    return NULL;
}


const pay_dialect_t *
pay_dialect_get(pay_dialect_e id)
{
    size_t  i;

    for (i = 0; pay_dialects[i] != NULL; i++) {
        if (pay_dialects[i]->id == id) {
            return pay_dialects[i];
        }
    }

    return NULL;
}


int
pay_dialect_key_kept(const pay_dialect_t *d, int64_t age, int64_t in_flight)
{
    if (d == NULL || age < 0 || in_flight < 0
        || in_flight > d->key_window || age > d->key_window)
    {
        return 0;
    }

    return age <= d->key_window - in_flight - PAY_KEY_MARGIN;
}


int
pay_dialect_subkey(const pay_dialect_t *d, const char *nonce,
    const char *what, char *out, size_t size)
{
    int            n;
    size_t         max, i, hex;
    unsigned char  md[SHA256_DIGEST_LENGTH];

    if (d == NULL || nonce == NULL || what == NULL || out == NULL) {
        return -1;
    }

    max = d->key_max ? d->key_max : 255;

    if (strlen(nonce) + 1 + strlen(what) <= max) {
        n = snprintf(out, size, "%s:%s", nonce, what);
        return (n < 0 || (size_t) n >= size) ? -1 : 0;
    }

    /* the digest's 64 hex digits, cut to what the key has room for */
    if (strlen(what) + 1 + 16 > max
        || SHA256((const unsigned char *) nonce, strlen(nonce), md) == NULL)
    {
        return -1;
    }

    hex = max - strlen(what) - 1;
    if (hex > 2 * SHA256_DIGEST_LENGTH) {
        hex = 2 * SHA256_DIGEST_LENGTH;
    }

    n = snprintf(out, size, "%s:", what);
    if (n < 0 || (size_t) n + hex >= size) {
        return -1;
    }

    for (i = 0; i < hex; i++) {
        out[n + i] = "0123456789abcdef"[(md[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
    }

    out[n + hex] = '\0';
    return 0;
}


const char *
pay_dialect_no_session(const pay_dialect_t *d, int connected, int status,
    pay_psp_outcome_e outcome, int key_in_use)
{
    size_t  i;

    if (!connected) {
        return "connect_refused";
    }

    if (d == NULL || key_in_use) {
        return NULL;
    }

    if (outcome == PAY_PSP_REFUSED && (d->no_session & PAY_NOSESSION_REFUSED))
    {
        return "refused";
    }

    if (outcome != PAY_PSP_RETRY) {
        return NULL;
    }

    if (status == 429 && (d->no_session & PAY_NOSESSION_THROTTLED)) {
        return "throttled";
    }

    if (status >= 500) {
        for (i = 0; i < sizeof(d->no_session_5xx) / sizeof(int); i++) {
            if (d->no_session_5xx[i] == 0) {
                break;
            }

            if (d->no_session_5xx[i] == status) {
                return "psp_5xx_nothing_made";
            }
        }
    }

    return NULL;
}



const char *
pay_event_kind_name(const pay_event_t *ev)
{
    switch (ev->kind) {
    case PAY_EVT_SUCCEEDED:
        return ev->captured ? "CAPTURED" : "SUCCEEDED";
    case PAY_EVT_AUTHORIZED:
        return "AUTHORIZED";
    case PAY_EVT_CAPTURE_SUCCEEDED:
        return "CAPTURE_SUCCEEDED";
    case PAY_EVT_CAPTURE_FAILED:
        return "CAPTURE_FAILED";
    case PAY_EVT_VOID_SUCCEEDED:
        return "VOID_SUCCEEDED";
    case PAY_EVT_VOID_FAILED:
        return "VOID_FAILED";
    case PAY_EVT_FAILED:
        return "FAILED";
    case PAY_EVT_PENDING:
        return "PENDING";
    case PAY_EVT_REFUND_SUCCEEDED:
        return "REFUND_SUCCEEDED";
    case PAY_EVT_REFUND_FAILED:
        return "REFUND_FAILED";
    case PAY_EVT_DISPUTE_OPENED:
        return "DISPUTE_OPENED";
    case PAY_EVT_DISPUTE_WON:
        return "DISPUTE_WON";
    case PAY_EVT_DISPUTE_LOST:
        return "DISPUTE_LOST";
    case PAY_EVT_DISPUTE_INQUIRY_CLOSED:
        return "DISPUTE_INQUIRY_CLOSED";
    case PAY_EVT_DECLINED:
        return "DECLINED";
    case PAY_EVT_PAYOUT_PAID:
        return "PAYOUT_PAID";
    case PAY_EVT_PAYOUT_FAILED:
        return "PAYOUT_FAILED";
    case PAY_EVT_PAYOUT_REVERSED:
        return "PAYOUT_REVERSED";
    case PAY_EVT_METHOD_SAVED:
        return "METHOD_SAVED";
    default:
        return "IGNORED";
    }
}


/* memmem() without _GNU_SOURCE (nginx's build of the core) */
static int
pay_contains(const char *hay, size_t n, const char *needle)
{
    size_t  i, m = strlen(needle);

    for (i = 0; m <= n && i <= n - m; i++) {
        if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0) {
            return 1;
        }
    }

    return 0;
}


int
pay_evidence_has_method_token(const char *bytes, size_t len)
{
    size_t  i;

    /* Stripe's payment methods and their older sources by id; the
     * "payment_method" member of Stripe's charges and intents and of the
     * generic dialect; Adyen's stored-method references by name */
    static const char  *marks[] = {
        "\"pm_", "\"card_", "\"src_", "\"payment_method\"",
        "recurringDetailReference", "storedPaymentMethodId",
        "RECURRING_CONTRACT", NULL
    };

    if (bytes == NULL) {
        return 0;
    }

    for (i = 0; marks[i] != NULL; i++) {
        if (pay_contains(bytes, len, marks[i])) {
            return 1;
        }
    }

    return 0;
}
