/*
 * An LD_PRELOAD shim for the e2e suite (test_psp.c): getaddrinfo() of the
 * host SLOW_DNS_HOST sleeps SLOW_DNS_SECONDS, as a DNS server that never
 * answers does, then fails; when the lookup ends it creates the file
 * SLOW_DNS_MARK.  Every other name goes to the real getaddrinfo.  The
 * variables are read when the library loads (nginx clears its workers'
 * environment later).
 *
 * With SLOW_DNS_NO_ASYNCH=1, curl_version_info() says libcurl has no
 * asynchronous resolver (AsynchDNS), as a libcurl built without the
 * threaded resolver or c-ares would (test_config.c).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

typedef int (*gai_pt)(const char *, const char *, const struct addrinfo *,
    struct addrinfo **);
typedef curl_version_info_data *(*cvi_pt)(CURLversion);

static char  slow_host[256], slow_mark[4096];
static int   slow_seconds, no_asynch;


__attribute__((constructor)) static void
slow_dns_init(void)
{
    const char  *h = getenv("SLOW_DNS_HOST"), *m = getenv("SLOW_DNS_MARK");
    const char  *s = getenv("SLOW_DNS_SECONDS");

    snprintf(slow_host, sizeof(slow_host), "%s", h ? h : "");
    snprintf(slow_mark, sizeof(slow_mark), "%s", m ? m : "");
    slow_seconds = s ? atoi(s) : 5;
    no_asynch = getenv("SLOW_DNS_NO_ASYNCH") != NULL;
}


/* curl's own, less CURL_VERSION_ASYNCHDNS when asked */
curl_version_info_data *
curl_version_info(CURLversion stamp)
{
    cvi_pt                         real;
    curl_version_info_data        *info;
    static curl_version_info_data  copy;

    real = (cvi_pt) dlsym(RTLD_NEXT, "curl_version_info");
    info = real ? real(stamp) : NULL;

    if (info == NULL || !no_asynch) {
        return info;
    }

    copy = *info;
    copy.features &= ~CURL_VERSION_ASYNCHDNS;

    return &copy;
}


int
getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
    int      fd;
    gai_pt   real;

    if (node != NULL && slow_host[0] != '\0' && strcmp(node, slow_host) == 0)
    {
        sleep((unsigned) slow_seconds);

        if (slow_mark[0] != '\0') {
            fd = open(slow_mark, O_WRONLY | O_CREAT, 0644);
            if (fd >= 0) {
                close(fd);
            }
        }

        return EAI_AGAIN;
    }

    real = (gai_pt) dlsym(RTLD_NEXT, "getaddrinfo");

    return real ? real(node, service, hints, res) : EAI_FAIL;
}
