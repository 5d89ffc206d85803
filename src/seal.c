/*
 * ngx_payments core: secrets at rest (seal.h).  AES-256-GCM and HMAC-SHA256
 * through OpenSSL's EVP interface; no I/O, no logs.
 */
#include <payments/seal.h>
#include <payments/jose.h>

#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define SEAL_NONCE  12
#define SEAL_TAG    16
#define SEAL_PREFIX "v1."

static const char blind_label[] = "ngx_payments blind index v1";


static int
kid_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
}


/* One line "<kid> <base64 of 32 bytes>" (surrounding blanks allowed). */
static int
keyring_line(pay_keyring_t *kr, const char *p, size_t len)
{
    size_t          i, k, b;
    int             n;
    unsigned int    ilen;
    unsigned char   raw[48];
    char            b64[48 + 1];
    pay_seal_key_t *key;

    if (kr->n == PAY_SEAL_KEYS_MAX) {
        return -1;
    }

    for (k = 0; k < len && kid_char((unsigned char) p[k]); k++) { /* kid */ }

    if (k == 0 || k > PAY_SEAL_KID_MAX || k == len
        || (p[k] != ' ' && p[k] != '\t'))
    {
        return -1;
    }

    for (i = k; i < len && (p[i] == ' ' || p[i] == '\t'); i++) { /* gap */ }

    for (b = 0; i + b < len && p[i + b] != ' ' && p[i + b] != '\t'; b++) {
        /* the key's base64 */
    }

    /* 32 bytes are 44 characters of standard base64 with one '=' */
    if (b != 44) {
        return -1;
    }

    for (n = (int) (i + b); (size_t) n < len; n++) {
        if (p[n] != ' ' && p[n] != '\t') {
            return -1;
        }
    }

    memcpy(b64, p + i, 44);
    b64[44] = '\0';

    if (b64[43] != '=' || b64[42] == '=') {
        return -1;
    }

    n = EVP_DecodeBlock(raw, (const unsigned char *) b64, 44);
    if (n != 33) {      /* 33: the '=' pad decodes as a zero byte */
        OPENSSL_cleanse(raw, sizeof(raw));
        OPENSSL_cleanse(b64, sizeof(b64));
        return -1;
    }

    for (i = 0; i < kr->n; i++) {
        if (strlen(kr->keys[i].kid) == k
            && memcmp(kr->keys[i].kid, p, k) == 0)
        {
            OPENSSL_cleanse(raw, sizeof(raw));
            OPENSSL_cleanse(b64, sizeof(b64));
            return -1;
        }
    }

    key = &kr->keys[kr->n];
    memcpy(key->kid, p, k);
    key->kid[k] = '\0';
    memcpy(key->key, raw, PAY_SEAL_KEY_LEN);

    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(b64, sizeof(b64));

    if (HMAC(EVP_sha256(), key->key, PAY_SEAL_KEY_LEN,
             (const unsigned char *) blind_label, sizeof(blind_label) - 1,
             key->index_key, &ilen) == NULL
        || ilen != sizeof(key->index_key))
    {
        OPENSSL_cleanse(key, sizeof(*key));
        return -1;
    }

    key->index_ready = 1;
    kr->n++;

    return 0;
}


int
pay_keyring_parse(pay_keyring_t *kr, const char *text, size_t len,
    size_t *bad_line)
{
    size_t       line, s, e;
    const char  *p, *nl;

    memset(kr, 0, sizeof(*kr));
    *bad_line = 0;

    p = text;
    line = 0;

    while (p < text + len) {
        line++;
        nl = memchr(p, '\n', (size_t) (text + len - p));
        e = nl ? (size_t) (nl - p) : (size_t) (text + len - p);

        if (e && p[e - 1] == '\r') {
            e--;
        }

        for (s = 0; s < e && (p[s] == ' ' || p[s] == '\t'); s++) { /* */ }

        if (s < e && p[s] != '#' && keyring_line(kr, p + s, e - s) != 0) {
            pay_keyring_wipe(kr);
            *bad_line = line;
            return -1;
        }

        p += (nl ? (size_t) (nl - p) + 1 : e);

        if (nl == NULL) {
            break;
        }
    }

    if (kr->n == 0) {
        return -1;
    }

    return 0;
}


void
pay_keyring_wipe(pay_keyring_t *kr)
{
    OPENSSL_cleanse(kr, sizeof(*kr));
}


size_t
pay_seal_len(size_t len)
{
    /* the kid is at most PAY_SEAL_KID_MAX: the caller's buffer holds the
     * longest; the text itself may be shorter */
    return sizeof(SEAL_PREFIX) - 1 + PAY_SEAL_KID_MAX + 1
           + pay_b64url_len(SEAL_NONCE + len + SEAL_TAG);
}


int
pay_seal(const pay_keyring_t *kr, const char *ad, const void *plain,
    size_t len, char *out, size_t cap)
{
    int                    n, ok;
    size_t                 klen, blen;
    unsigned char         *buf;
    EVP_CIPHER_CTX        *cx;
    const pay_seal_key_t  *key;

    if (kr == NULL || kr->n == 0 || len > 64 * 1024) {
        return -1;
    }

    key = &kr->keys[0];
    klen = strlen(key->kid);
    blen = SEAL_NONCE + len + SEAL_TAG;

    if (cap < sizeof(SEAL_PREFIX) - 1 + klen + 1 + pay_b64url_len(blen) + 1) {
        return -1;
    }

    buf = OPENSSL_malloc(blen);
    if (buf == NULL) {
        return -1;
    }

    ok = 0;
    cx = EVP_CIPHER_CTX_new();

    if (cx
        && RAND_bytes(buf, SEAL_NONCE) == 1
        && EVP_EncryptInit_ex(cx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1
        && EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE, NULL)
           == 1
        && EVP_EncryptInit_ex(cx, NULL, NULL, key->key, buf) == 1
        && EVP_EncryptUpdate(cx, NULL, &n, (const unsigned char *) ad,
                             (int) strlen(ad)) == 1
        && EVP_EncryptUpdate(cx, buf + SEAL_NONCE, &n, plain, (int) len) == 1
        && (size_t) n == len
        && EVP_EncryptFinal_ex(cx, buf + SEAL_NONCE + len, &n) == 1
        && EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG,
                               buf + SEAL_NONCE + len) == 1)
    {
        ok = 1;
    }

    EVP_CIPHER_CTX_free(cx);

    if (ok) {
        memcpy(out, SEAL_PREFIX, sizeof(SEAL_PREFIX) - 1);
        memcpy(out + sizeof(SEAL_PREFIX) - 1, key->kid, klen);
        out[sizeof(SEAL_PREFIX) - 1 + klen] = '.';
        pay_b64url_encode(buf, blen, out + sizeof(SEAL_PREFIX) + klen);
    }

    OPENSSL_clear_free(buf, blen);

    return ok ? 0 : -1;
}


/* The key a sealed text names, and where its payload starts. */
static const pay_seal_key_t *
seal_key(const pay_keyring_t *kr, const char *sealed, size_t slen,
    size_t *payload)
{
    size_t  i, k;

    if (kr == NULL || slen < sizeof(SEAL_PREFIX) + 1
        || memcmp(sealed, SEAL_PREFIX, sizeof(SEAL_PREFIX) - 1) != 0)
    {
        return NULL;
    }

    sealed += sizeof(SEAL_PREFIX) - 1;
    slen -= sizeof(SEAL_PREFIX) - 1;

    for (k = 0; k < slen && sealed[k] != '.'; k++) { /* kid */ }

    if (k == 0 || k == slen || k > PAY_SEAL_KID_MAX) {
        return NULL;
    }

    for (i = 0; i < kr->n; i++) {
        if (strlen(kr->keys[i].kid) == k
            && memcmp(kr->keys[i].kid, sealed, k) == 0)
        {
            *payload = sizeof(SEAL_PREFIX) - 1 + k + 1;
            return &kr->keys[i];
        }
    }

    return NULL;
}


int
pay_unseal(const pay_keyring_t *kr, const char *ad, const char *sealed,
    size_t slen, void *out, size_t cap, size_t *outlen)
{
    int                    n, ok;
    size_t                 off, plen;
    ssize_t                blen;
    unsigned char         *buf;
    EVP_CIPHER_CTX        *cx;
    const pay_seal_key_t  *key;

    key = seal_key(kr, sealed, slen, &off);
    if (key == NULL || slen - off > 128 * 1024) {
        return -1;
    }

    buf = OPENSSL_malloc((slen - off) * 3 / 4 + 1);
    if (buf == NULL) {
        return -1;
    }

    blen = pay_b64url_decode(sealed + off, slen - off, buf);
    if (blen < SEAL_NONCE + SEAL_TAG
        || (size_t) blen - SEAL_NONCE - SEAL_TAG + 1 > cap)
    {
        OPENSSL_free(buf);
        return -1;
    }

    plen = (size_t) blen - SEAL_NONCE - SEAL_TAG;
    ok = 0;
    cx = EVP_CIPHER_CTX_new();

    if (cx
        && EVP_DecryptInit_ex(cx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1
        && EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE, NULL)
           == 1
        && EVP_DecryptInit_ex(cx, NULL, NULL, key->key, buf) == 1
        && EVP_DecryptUpdate(cx, NULL, &n, (const unsigned char *) ad,
                             (int) strlen(ad)) == 1
        && EVP_DecryptUpdate(cx, out, &n, buf + SEAL_NONCE, (int) plen) == 1
        && EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG,
                               buf + SEAL_NONCE + plen) == 1
        && EVP_DecryptFinal_ex(cx, (unsigned char *) out + plen, &n) == 1)
    {
        ok = 1;
    }

    EVP_CIPHER_CTX_free(cx);
    OPENSSL_clear_free(buf, (size_t) blen);

    if (!ok) {
        OPENSSL_cleanse(out, plen);
        return -1;
    }

    ((unsigned char *) out)[plen] = '\0';
    *outlen = plen;

    return 0;
}


int
pay_seal_is_current(const pay_keyring_t *kr, const char *sealed,
    size_t slen)
{
    size_t  off;

    return kr != NULL && kr->n > 0
           && seal_key(kr, sealed, slen, &off) == &kr->keys[0];
}


int
pay_blind_index(const pay_keyring_t *kr, size_t i, const char *domain,
    const char *value, size_t len, char out[PAY_BLIND_INDEX_LEN + 1])
{
    static const char  hex[] = "0123456789abcdef";
    unsigned int       n;
    size_t             j, dlen;
    unsigned char      mac[32], *msg;
    int                ok;

    if (kr == NULL || i >= kr->n || len > 64 * 1024
        || !kr->keys[i].index_ready)
    {
        return -1;
    }

    dlen = strlen(domain) + 1;
    msg = OPENSSL_malloc(dlen + len + 1);
    if (msg == NULL) {
        return -1;
    }

    memcpy(msg, domain, dlen);      /* with its NUL */
    memcpy(msg + dlen, value, len);

    /* HMAC-SHA256(HMAC-SHA256(key, label), domain NUL value) */
    ok = HMAC(EVP_sha256(), kr->keys[i].index_key,
              sizeof(kr->keys[i].index_key), msg, dlen + len, mac, &n)
         != NULL;

    OPENSSL_clear_free(msg, dlen + len + 1);

    if (!ok) {
        return -1;
    }

    for (j = 0; j < 32; j++) {
        out[2 * j] = hex[mac[j] >> 4];
        out[2 * j + 1] = hex[mac[j] & 15];
    }

    out[PAY_BLIND_INDEX_LEN] = '\0';

    return 0;
}
