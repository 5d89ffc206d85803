/*
 * Unit tests: merchant notifications (src/notify.c): Standard Webhooks
 * secrets and signatures, the retry schedule, the address and URL rules.
 */

#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include <payments/notify.h>


static int
nt_v4(const char *a, int allow_loopback)
{
    struct sockaddr_in  sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    cr_assert_eq(inet_pton(AF_INET, a, &sin.sin_addr), 1, "%s", a);

    return pay_addr_forbidden((struct sockaddr *) &sin, allow_loopback);
}


static int
nt_v6(const char *a, int allow_loopback)
{
    struct sockaddr_in6  sin6;

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    cr_assert_eq(inet_pton(AF_INET6, a, &sin6.sin6_addr), 1, "%s", a);

    return pay_addr_forbidden((struct sockaddr *) &sin6, allow_loopback);
}


static int
nt_url(const char *url, int allow_loopback, char *host)
{
    const char  *why;

    return pay_endpoint_url_check(url, strlen(url), allow_loopback, host,
                                  256, &why);
}


/* the specification's own example (standard-webhooks, spec/standard-webhooks.md) */
Test(notify, signature_matches_the_standard_webhooks_example)
{
    char           sig[PAY_NOTIFY_SIG_MAX];
    size_t         klen;
    unsigned char  key[PAY_WHSEC_KEY_MAX];
    const char    *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const char    *body = "{\"test\": 2432232314}";

    cr_assert_eq(pay_whsec_decode(secret, strlen(secret), key, &klen), 0);
    cr_assert_eq(klen, 24);
    cr_assert_eq(pay_notify_sign(key, klen, "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                 1614265330, body, strlen(body), sig,
                                 sizeof(sig)), 0);
    cr_expect_str_eq(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}


Test(notify, signature_changes_with_id_time_and_body)
{
    char           a[PAY_NOTIFY_SIG_MAX], b[PAY_NOTIFY_SIG_MAX];
    unsigned char  key[32] = { 1 };

    cr_assert_eq(pay_notify_sign(key, 32, "msg_1", 10, "{}", 2, a, sizeof(a)), 0);
    cr_assert_eq(pay_notify_sign(key, 32, "msg_2", 10, "{}", 2, b, sizeof(b)), 0);
    cr_expect_str_neq(a, b);
    cr_assert_eq(pay_notify_sign(key, 32, "msg_1", 11, "{}", 2, b, sizeof(b)), 0);
    cr_expect_str_neq(a, b);
    cr_assert_eq(pay_notify_sign(key, 32, "msg_1", 10, "{ }", 3, b, sizeof(b)), 0);
    cr_expect_str_neq(a, b);
}


Test(notify, message_id_that_could_split_a_header_is_refused)
{
    char           sig[PAY_NOTIFY_SIG_MAX];
    unsigned char  key[32] = { 1 };

    cr_expect_eq(pay_notify_sign(key, 32, "msg_1\r\nx: y", 1, "{}", 2, sig,
                                 sizeof(sig)), -1);
    cr_expect_eq(pay_notify_sign(key, 32, "msg.1", 1, "{}", 2, sig,
                                 sizeof(sig)), -1);
    cr_expect_eq(pay_notify_sign(key, 32, "", 1, "{}", 2, sig, sizeof(sig)), -1);
    cr_expect_eq(pay_notify_sign(key, 32, "msg_1", 1, "{}", 2, sig, 10), -1);
}


Test(notify, new_secrets_are_random_and_decode)
{
    char           a[PAY_WHSEC_TEXT_MAX], b[PAY_WHSEC_TEXT_MAX];
    size_t         klen;
    unsigned char  key[PAY_WHSEC_KEY_MAX];

    cr_assert_eq(pay_whsec_new(a, sizeof(a)), 0);
    cr_assert_eq(pay_whsec_new(b, sizeof(b)), 0);
    cr_expect_str_neq(a, b);
    cr_expect_eq(strncmp(a, "whsec_", 6), 0);
    cr_assert_eq(pay_whsec_decode(a, strlen(a), key, &klen), 0);
    cr_expect_eq(klen, PAY_WHSEC_NEW);
}


Test(notify, secret_decoding_is_strict)
{
    size_t         klen;
    unsigned char  key[PAY_WHSEC_KEY_MAX];
    const char    *bad[] = {
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",             /* no prefix */
        "whsec_",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",        /* not 4n */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-w",       /* base64url */
        "whsec_MfKQ9r8GKYqrTwjUPD8I=PZIo2LaLaSw",       /* '=' inside */
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAA=",           /* 20 bytes */
        NULL
    };
    size_t         i;

    for (i = 0; bad[i]; i++) {
        cr_expect_eq(pay_whsec_decode(bad[i], strlen(bad[i]), key, &klen), -1,
                     "%s", bad[i]);
    }
}


Test(notify, schedule_is_standard_webhooks_then_two_more_over_three_days)
{
    static const int64_t  s[] = { 5, 300, 1800, 7200, 18000, 36000, 36000,
                                  72000, 86400 };
    int64_t               total;
    unsigned              i;

    total = 0;

    for (i = 1; i < PAY_NOTIFY_ATTEMPTS; i++) {
        cr_expect_eq(pay_notify_backoff_ms(i, 1, 0.5), s[i - 1] * 1000,
                     "after attempt %u", i);
        total += pay_notify_backoff_ms(i, 1, 0.5);
    }

    cr_expect_eq(total, 257705000, "71.6 hours");
    cr_expect_eq(pay_notify_backoff_ms(PAY_NOTIFY_ATTEMPTS, 1, 0.5), -1,
                 "the tenth attempt was the last");
    cr_expect_eq(pay_notify_backoff_ms(50, 1, 0.5), -1);
}


Test(notify, jitter_stays_within_ten_percent_and_scale_compresses)
{
    cr_expect_eq(pay_notify_backoff_ms(2, 1, 0.0), 270000);
    cr_expect_eq(pay_notify_backoff_ms(2, 1, 0.999999), 329999);
    cr_expect_eq(pay_notify_backoff_ms(2, 1, 7.0), 300000, "out of range");
    cr_expect_eq(pay_notify_backoff_ms(2, 1000, 0.5), 300);
    cr_expect_eq(pay_notify_backoff_ms(2, 0, 0.5), 300000, "scale 0 is 1");
    cr_expect_eq(pay_notify_backoff_ms(1, 100000, 0.0), 1, "at least 1 ms");
}


Test(notify, private_and_reserved_ipv4_are_forbidden)
{
    const char  *no[] = { "0.0.0.0", "10.1.2.3", "100.64.0.1", "127.0.0.1",
                          "127.9.9.9", "169.254.169.254", "172.16.0.1",
                          "172.31.255.255", "192.0.0.1", "192.0.2.1",
                          "192.168.1.1", "198.18.0.1", "198.51.100.1",
                          "203.0.113.1", "224.0.0.1", "240.0.0.1",
                          "255.255.255.255", NULL };
    const char  *yes[] = { "8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1",
                           "192.169.0.1", "11.0.0.1", NULL };
    size_t       i;

    for (i = 0; no[i]; i++) {
        cr_expect_eq(nt_v4(no[i], 0), 1, "%s", no[i]);
    }

    for (i = 0; yes[i]; i++) {
        cr_expect_eq(nt_v4(yes[i], 0), 0, "%s", yes[i]);
    }

    cr_expect_eq(nt_v4("127.0.0.1", 1), 0, "allow_loopback");
    cr_expect_eq(nt_v4("10.0.0.1", 1), 1, "allow_loopback is loopback only");
}


Test(notify, ipv6_and_ipv4_inside_ipv6_are_checked)
{
    const char  *no[] = { "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1",
                          "fec0::1", "ff02::1", "2001:db8::1",
                          "::ffff:10.0.0.1", "::ffff:127.0.0.1",
                          "::ffff:169.254.169.254", "::10.0.0.1",
                          "64:ff9b::a9fe:a9fe", "64:ff9b:1::1",
                          "2002:c0a8:0101::1", "2001::1", "100::1", NULL };
    const char  *yes[] = { "2606:4700::1111", "2a00:1450:4001::1",
                           "::ffff:8.8.8.8", "64:ff9b::808:808",
                           "2002:0808:0808::1", NULL };
    size_t       i;

    for (i = 0; no[i]; i++) {
        cr_expect_eq(nt_v6(no[i], 0), 1, "%s", no[i]);
    }

    for (i = 0; yes[i]; i++) {
        cr_expect_eq(nt_v6(yes[i], 0), 0, "%s", yes[i]);
    }

    cr_expect_eq(nt_v6("::1", 1), 0, "allow_loopback");
    cr_expect_eq(nt_v6("::ffff:127.0.0.1", 1), 0);
    cr_expect_eq(pay_addr_forbidden(NULL, 1), 1);
}


Test(notify, an_address_as_text_is_checked_by_the_same_rules)
{
    cr_expect_eq(pay_addr_text_forbidden("127.0.0.1", 0), 1);
    cr_expect_eq(pay_addr_text_forbidden("127.0.0.1", 1), 0);
    cr_expect_eq(pay_addr_text_forbidden("10.0.0.5", 1), 1);
    cr_expect_eq(pay_addr_text_forbidden("169.254.169.254", 0), 1);
    cr_expect_eq(pay_addr_text_forbidden("::ffff:10.0.0.1", 0), 1);
    cr_expect_eq(pay_addr_text_forbidden("::1", 0), 1);
    cr_expect_eq(pay_addr_text_forbidden("8.8.8.8", 0), 0);
    cr_expect_eq(pay_addr_text_forbidden("2606:4700::1111", 0), 0);

    /* not an address: refused */
    cr_expect_eq(pay_addr_text_forbidden("", 1), 1);
    cr_expect_eq(pay_addr_text_forbidden("localhost", 1), 1);
    cr_expect_eq(pay_addr_text_forbidden("8.8.8.8.8", 0), 1);
    cr_expect_eq(pay_addr_text_forbidden(NULL, 0), 1);
}


Test(notify, endpoint_url_rules)
{
    char         host[256];
    const char  *bad[] = {
        "http://shop.example/h", "ftp://shop.example/", "https://",
        "https:///x", "https://user@shop.example/", "https://shop.example/#f",
        "https://shop example/", "https://shop.example/\x01",
        "https://10.0.0.1/", "https://169.254.169.254/latest/meta-data",
        "https://[::1]/", "https://[fe80::1]/", "https://[::ffff:10.0.0.1]/",
        "https://localhost/", "https://api.localhost/", "https://db.internal/",
        "https://printer.local/", "https://intranet/",
        "https://0x7f000001/", "https://2130706433/", "https://127.1/",
        "https://shop.example:0/", "https://shop.example:65536/",
        "https://shop.example:/", "https://-shop.example/",
        "https://shop_1.example/", "https://shop.example\\@evil.example/",
        NULL
    };
    size_t       i;

    for (i = 0; bad[i]; i++) {
        cr_expect_eq(nt_url(bad[i], 0, host), -1, "%s", bad[i]);
    }

    cr_assert_eq(nt_url("HTTPS://Shop.Example.:8443/hooks?x=1", 0, host), 0);
    cr_expect_str_eq(host, "shop.example");
    cr_assert_eq(nt_url("https://[2606:4700::1111]/h", 0, host), 0);
    cr_expect_str_eq(host, "2606:4700::1111");
    cr_assert_eq(nt_url("https://8.8.8.8/h", 0, host), 0);
    cr_assert_eq(nt_url("https://127.0.0.1:9443/h", 1, host), 0);
    cr_assert_eq(nt_url("https://localhost:9443/h", 1, host), 0);
    cr_expect_eq(nt_url("https://10.0.0.1/", 1, host), -1);
}


Test(notify, event_types_are_a_closed_list)
{
    size_t  i;

    for (i = 0; pay_notify_event_types[i]; i++) {
        cr_expect(pay_notify_event_type_valid(pay_notify_event_types[i],
                                              strlen(pay_notify_event_types[i])));
    }

    cr_expect_eq(i, 19);
    cr_expect(pay_notify_event_type_valid("capture.succeeded", 17));
    cr_expect(pay_notify_event_type_valid("payout.reversed", 15));
    cr_expect(pay_notify_event_type_valid("checkout.canceled", 17));
    cr_expect(pay_notify_event_type_valid("checkout.approved", 17));
    cr_expect(pay_notify_event_type_valid("checkout.authorized", 19));
    cr_expect(pay_notify_event_type_valid("checkout.risk_flagged", 21));
    cr_expect(pay_notify_event_type_valid("capture.failed", 14));
    cr_expect(pay_notify_event_type_valid("payment_method.saved", 20));
    cr_expect(pay_notify_event_type_valid("payment_method.detached", 23));
    cr_expect(pay_notify_event_type_valid("*", 1));
    cr_expect_not(pay_notify_event_type_valid("checkout", 8));
    cr_expect_not(pay_notify_event_type_valid("checkout.succeeded ", 19));
}
