/*
 * The mock PSP's tests, black box: every test starts its own mock
 * (build/mock_psp, or $MOCK_PSP_BIN) on a free loopback port, talks HTTP
 * to it with libcurl, then stops it with SIGTERM and requires a clean exit
 * and a stderr free of sanitizer reports.
 *
 * This client (mock_client.c): starting and stopping the mock, requests,
 * the control API, and MOCK_TEST, a test with a mock of its own.  The
 * webhook receiver is mock_receiver.h's, the Adyen and generic dialects'
 * helpers mock_dialects.h's; the tests are test_mock_<area>.c.
 */
#ifndef MOCK_CLIENT_H
#define MOCK_CLIENT_H

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ec.h>
#include <openssl/pem.h>


#define SECRET      "sk_test_mock_secret"
#define SUCCESS     "https://shop.example/ok?session={CHECKOUT_SESSION_ID}"
#define CANCEL      "https://shop.example/cart"

/* AUTH_* select the Authorization header a request carries. */
#define AUTH_NONE   0
#define AUTH_GOOD   1
#define AUTH_BAD    2


typedef struct {
    CURLcode     rc;
    long         status;
    char        *body;
    size_t       len;
    char         location[2048];
    char         retry_after[32];
    int          replayed;
    json_t      *json;
} resp_t;


/* The running mock: its URL, its Transfers URL, its stderr. */
extern char   mock_url[128];
extern char   mock_transfers_url[128];     /* --adyen-transfers-port */
extern char   mock_log_path[512];


void mock_start_with(const char *const *extra);
void mock_start(void);
void mock_stop(void);
CURL *prepare(resp_t *r, struct curl_slist **hdrs, const char *method,
    const char *path, int auth, const char *key, const char *ctype,
    const char *body);
void finish(resp_t *r, CURL *h, struct curl_slist *hdrs);
void request(resp_t *r, const char *method, const char *path, int auth,
    const char *key, const char *ctype, const char *body);
void resp_free(resp_t *r);
void create(resp_t *r, const char *key, const char *body);
void form(char *buf, size_t size, const char *ref, long amount,
    const char *extra);
void control(resp_t *r, const char *method, const char *path, const char *json);
void fault(const char *json);
void registrations(const char *key, long long *created, long long *requests);
const char *str(const resp_t *r, const char *name);
const char *error_field(const resp_t *r, const char *name);
double now_ms(void);
const char *create_ok(const char *key, long amount);
void mock_kill(void);


#define MOCK_TEST(name)                                                      \
    static void name##_body(void);                                          \
    Test(mock_psp, name, .init = mock_start, .fini = mock_kill,             \
         .timeout = 60)                                                     \
    {                                                                        \
        name##_body();                                                       \
        mock_stop();                                                         \
    }                                                                        \
    static void name##_body(void)


#endif
