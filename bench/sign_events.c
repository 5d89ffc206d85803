/*
 * bench/sign_events: writes N signed Stripe webhook requests for the
 * webhook benchmark, one per line: "<Stripe-Signature value>\t<body>".
 * Input lines (stdin): "<merchant_id>\t<checkout_id>\t<psp token>\t<amount>".
 * The signatures are made now; replay them within the tolerance (300 s).
 * Each event's id names its merchant and checkout, so the events of two
 * sets signed in the same second never share an id (the gateway would
 * answer the second set's as duplicates, without applying them).
 *
 *   sign_events WHSEC < checkouts.tsv > events.tsv
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/hmac.h>


int
main(int argc, char **argv)
{
    char            line[1024], body[2048], payload[2200], hex[65];
    char           *m, *co, *tok, *amt, *save;
    long            t;
    unsigned int    len, i;
    unsigned char   mac[32];

    if (argc != 2) {
        fprintf(stderr, "usage: sign_events WHSEC < checkouts.tsv\n");
        return 2;
    }

    t = (long) time(NULL);

    while (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\r\n")] = '\0';

        m = strtok_r(line, "\t", &save);
        co = strtok_r(NULL, "\t", &save);
        tok = strtok_r(NULL, "\t", &save);
        amt = strtok_r(NULL, "\t", &save);

        if (m == NULL || co == NULL || tok == NULL || amt == NULL) {
            continue;
        }

        snprintf(body, sizeof(body),
                 "{\"id\":\"evt_bench_%s_%s\",\"object\":\"event\","
                 "\"type\":\"checkout.session.completed\",\"created\":%ld,"
                 "\"livemode\":false,\"data\":{\"object\":{\"id\":\"%s\","
                 "\"object\":\"checkout.session\",\"client_reference_id\":"
                 "\"%s:%s\",\"amount_total\":%s,\"currency\":\"usd\","
                 "\"payment_intent\":\"pi_bench_%s_%s\","
                 "\"payment_status\":\"paid\",\"status\":\"complete\"}}}",
                 m, co, t, tok, m, co, amt, m, co);

        snprintf(payload, sizeof(payload), "%ld.%s", t, body);
        HMAC(EVP_sha256(), argv[1], (int) strlen(argv[1]),
             (unsigned char *) payload, strlen(payload), mac, &len);

        for (i = 0; i < 32; i++) {
            sprintf(hex + 2 * i, "%02x", mac[i]);
        }

        printf("t=%ld,v1=%s\t%s\n", t, hex, body);
    }

    return 0;
}
