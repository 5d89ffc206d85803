/*
 * The mock PSP's command line and what it switches on and off.
 */

#include "mock_dialects.h"


/* --- command line --------------------------------------------------------- */

/* The exit status of the mock run with the Stripe basics and args. */
static int
mock_exit_status(const char *const *args)
{
    int          status;
    size_t       k, i;
    pid_t        pid;
    const char  *bin, *argv[32];

    bin = getenv("MOCK_PSP_BIN");
    if (bin == NULL) {
        bin = "build/mock_psp";
    }

    k = 0;
    argv[k++] = bin;
    argv[k++] = "--port";
    argv[k++] = "0";
    argv[k++] = "--stripe-secret";
    argv[k++] = SECRET;
    for (i = 0; args[i] != NULL && k < 31; i++) {
        argv[k++] = args[i];
    }
    argv[k] = NULL;

    pid = fork();
    cr_assert_neq(pid, -1);

    if (pid == 0) {
        int  fd;

        fd = open("/dev/null", O_WRONLY);
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        execv(bin, (char *const *) argv);
        _exit(127);
    }

    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "status %d", status);

    return WEXITSTATUS(status);
}


Test(dialects, refuses_bad_dialect_flags, .timeout = 60)
{
    size_t  i;
    char    rsa[128], cmd[512];

    dl_keys();
    snprintf(rsa, sizeof(rsa), "%s/rsa.pem", dl_dir);
    snprintf(cmd, sizeof(cmd), "openssl genpkey -algorithm RSA "
             "-pkeyopt rsa_keygen_bits:1024 -out %s 2>/dev/null", rsa);
    cr_assert_eq(system(cmd), 0);

    {
        const char  *bad[][8] = {
            /* an unsigned webhook would test nothing */
            { "--adyen-secret", "k", "--adyen-webhook-url", "http://x/", NULL },
            { "--generic-secret", "k", "--generic-webhook-url", "http://x/",
              NULL },
            { "--adyen-hmac-key", "DFB1", NULL },
            { "--adyen-hmac-key", "ZZB1EB5485895CFA84146406857104ABB4CBCABDC8"
              "AAF103A624C8F6A3EAAB00", NULL },
            { "--adyen-webhook-url", "ftp://x/", "--adyen-hmac-key", ADYEN_HMAC,
              NULL },
            { "--generic-jwt-key", "/nonexistent.pem", NULL },
            { "--generic-jwt-key", rsa, NULL },
            { "--generic-jwt-key", dl_pub, NULL },
            { "--generic-jwt-header", "Bad Header", NULL },
            { "--generic-jwt-header", "", NULL },
            { "--generic-jwt-kid", "", NULL },
            { "--generic-jwt-iss", "a\tb", NULL },
        };

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            cr_assert_eq(mock_exit_status(bad[i]), 2, "case %zu (%s %s)", i,
                         bad[i][0], bad[i][1]);
        }
    }

    {
        /* --help lists every dialect flag (ci/services.sh looks) */
        FILE        *f;
        char         out[8192];
        size_t       n;
        const char  *bin;

        static const char  *flags[] = {
            "--adyen-secret", "--adyen-hmac-key", "--adyen-webhook-url",
            "--generic-secret", "--generic-jwt-key", "--generic-jwt-kid",
            "--generic-jwt-iss", "--generic-jwt-aud", "--generic-jwt-header",
            "--generic-webhook-url", "--webhook-url"
        };

        bin = getenv("MOCK_PSP_BIN");
        snprintf(cmd, sizeof(cmd), "%s --help 2>&1",
                 bin ? bin : "build/mock_psp");
        f = popen(cmd, "r");
        cr_assert_not_null(f);
        n = fread(out, 1, sizeof(out) - 1, f);
        out[n] = '\0';
        cr_assert_eq(pclose(f), 0);

        for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
            cr_assert_not_null(strstr(out, flags[i]), "--help lacks %s",
                               flags[i]);
        }
    }

    dl_cleanup();
}


/* Without their secrets the Adyen and generic APIs are not there. */
MOCK_TEST(dialect_apis_are_off_without_their_secrets)
{
    resp_t  r;

    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, NULL,
            "application/json", "{}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);

    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, NULL,
            "application/json", "{}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    resp_free(&r);
}


/* The registration fault rules, worded each PSP's way. */
DIALECT_TEST(registration_faults_in_both_dialects, dl_start)
{
    char         id[64], *body;
    resp_t       r;
    long long    created, requests;

    fault("{\"match\":\"co_f1\",\"fail_times\":1,\"fail_status\":503}");
    fault("{\"match\":\"co_f2\",\"refuse_status\":402}");
    fault("{\"match\":\"co_f3\",\"hosted_url\":\"https://evil.example/x\"}");
    fault("{\"match\":\"co_f4\",\"drop_after_register\":1}");

    /* Adyen: a transient failure, then the session */
    body = dump(adyen_json("m1:co_f1a", 1000, "EUR", ADYEN_RETURN));
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, "m1:co_f1a",
            "application/json", body);
    adyen_expect_error(&r, 503, "internal");
    resp_free(&r);
    dl_post(&r, "/v71/sessions", "X-API-Key: " ADYEN_KEY, "m1:co_f1a",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_not(r.replayed);
    resp_free(&r);
    free(body);
    registrations("m1:co_f1a", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 2);

    /* generic (a rule of its own: only the first match applies) */
    fault("{\"match\":\"co_h1\",\"fail_times\":1,\"fail_status\":500}");
    body = dump(generic_json("m1:co_h1", "1.00", "EUR"));
    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, "m1:co_h1",
            "application/json", body);
    cr_assert_eq(r.status, 500, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "unavailable");
    resp_free(&r);
    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, "m1:co_h1",
            "application/json", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    resp_free(&r);
    free(body);

    /* refused for good */
    adyen_post(&r, "m1:co_f2a", adyen_json("m1:co_f2a", 1000, "EUR",
                                           ADYEN_RETURN));
    adyen_expect_error(&r, 402, "validation");
    resp_free(&r);
    generic_post(&r, "m1:co_f2g", generic_json("m1:co_f2g", "1.00", "EUR"));
    cr_assert_eq(r.status, 402, "%s", r.body);
    cr_assert_str_eq(error_field(&r, "code"), "refused");
    resp_free(&r);
    registrations("m1:co_f2g", &created, &requests);
    cr_assert_eq(created, 0);

    /* an off-list hosted page */
    adyen_post(&r, "m1:co_f3a", adyen_json("m1:co_f3a", 1000, "EUR",
                                           ADYEN_RETURN));
    cr_assert_str_eq(str(&r, "url"), "https://evil.example/x");
    resp_free(&r);
    generic_post(&r, "m1:co_f3g", generic_json("m1:co_f3g", "1.00", "EUR"));
    cr_assert_str_eq(str(&r, "url"), "https://evil.example/x");
    resp_free(&r);

    /* registered, then the connection dropped: the retry gets it */
    body = dump(generic_json("m1:co_f4g", "1.00", "EUR"));
    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, "m1:co_f4g",
            "application/json", body);
    cr_assert_neq(r.rc, CURLE_OK);
    resp_free(&r);
    dl_post(&r, "/sessions", "Authorization: Bearer " GEN_KEY, "m1:co_f4g",
            "application/json", body);
    cr_assert_eq(r.status, 201);
    cr_assert(r.replayed);
    snprintf(id, sizeof(id), "%s", str(&r, "token"));
    resp_free(&r);
    free(body);
    registrations("m1:co_f4g", &created, &requests);
    cr_assert_eq(created, 1);
    cr_assert_eq(requests, 2);
    json_decref(session_act(id, "pay", 200));
}
