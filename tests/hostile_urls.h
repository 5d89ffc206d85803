/*
 * Hostile return and redirect URLs, each to be refused against a merchant
 * whose only origin is https://shop.example (issue #4).  An X-macro: the
 * unit table (tests/unit/test_url_hostile.c) and the end-to-end one
 * (tests/e2e/test_owasp.c) are made from this one list.
 */
#ifndef PAY_TESTS_HOSTILE_URLS_H
#define PAY_TESTS_HOSTILE_URLS_H

#define PAY_HOSTILE_URLS(X) \
    X("https://shop.example.evil") \
    X("https://shop.example.evil/thanks") \
    X("https://evilshop.example") \
    X("https://shop.example@evil") \
    X("https://shop.example:443@evil") \
    X("https://user:pass@shop.example/") \
    X("https://shop.example\\@evil") \
    X("//evil") \
    X("//shop.example") \
    X("/\\evil") \
    X("https:/\\evil") \
    X("https:\\\\evil") \
    X("https://shop.example\r\nLocation: https://evil/") \
    X("https://shop.example\n.evil") \
    X("https://shop.example\t/") \
    X("https://shop.example /") \
    X(" https://shop.example/") \
    X("https://shop.example./") \
    X("https://shop.example%2eevil.com") \
    X("https://shop%2eexample/") \
    X("http://shop.example/") \
    X("HTTP://shop.example/") \
    X("javascript:alert(1)//https://shop.example") \
    X("data:text/html,https://shop.example") \
    X("ftp://shop.example/") \
    X("https://shop.example:8443/") \
    X("https://shop.example:80/") \
    X("https://xn--shp-dma.example/") \
    X("https://shöp.example/") \
    X("https://shop.example\xE2\x80\xAE/") \
    X("https://[::1]/") \
    X("https://127.0.0.1/") \
    X("https:shop.example") \
    X("https:///shop.example") \
    X("shop.example/thanks") \
    X("") \

#endif
