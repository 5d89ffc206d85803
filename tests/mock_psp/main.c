/*
 * Mock PSP: command line, daemon start and stop, request routing.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mock_psp.h"


/*
 * The benchmark holds 256 keep-alive connections; e2e suites add their own.
 * One thread per connection, so a small stack keeps 4096 of them cheap.
 */
#define MOCK_CONNECTION_LIMIT  4096
#define MOCK_STACK_SIZE        (512 * 1024)
#define MOCK_IDLE_TIMEOUT      120
#define MOCK_STOP_BOUND        5

/* Adyen's OpenAPI documents (spec.c), unless --adyen-specs says */
#ifndef MOCK_SPEC_DIR
#define MOCK_SPEC_DIR          "tests/mock_psp/specs"
#endif


#ifdef __SANITIZE_ADDRESS__
/*
 * The ASan build (the one the e2e suite runs): by default ASan's allocator
 * gives a finished thread's free pages back to the kernel, and the mock
 * starts a thread for every connection and every webhook chain; those
 * madvise calls and the TLB flushes they cost took a fifth of the mock's
 * processor time.  The pages stay mapped and are used again instead.
 * ASAN_OPTIONS still overrides it.
 */
const char *__asan_default_options(void);

const char *
__asan_default_options(void)
{
    return "allocator_release_to_os_interval_ms=-1";
}
#endif


static void mock_usage(FILE *f);
static int mock_parse_long(const char *s, long min, long max, long *out);
static int mock_parse_args(int argc, char **argv);
static void mock_raise_fd_limit(void);
static int mock_sockaddr(struct sockaddr_storage *ss, unsigned *flags,
    unsigned port);
static struct MHD_Daemon *mock_listen(unsigned port, void *cls,
    unsigned *bound);
static void mock_url(char *url, size_t size, unsigned port);
static void *mock_watchdog(void *arg);
static void mock_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static enum MHD_Result mock_handler(void *cls, struct MHD_Connection *c,
    const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **con_cls);
static enum MHD_Result mock_route(struct MHD_Connection *c,
    mock_request_t *r, const char *url, const char *method);
static enum MHD_Result mock_route_transfers(struct MHD_Connection *c,
    mock_request_t *r, const char *url, const char *method);
static int mock_adyen_spec(struct MHD_Connection *c, mock_spec_api_e api,
    mock_request_t *r, const char *url, const char *method,
    enum MHD_Result *rc);
static void mock_completed(void *cls, struct MHD_Connection *c,
    void **con_cls, enum MHD_RequestTerminationCode toe);


mock_conf_t  mock_conf;

/* the transfers listener's cls: Adyen's Transfers API, on a host (here a
 * port) of its own */
static int  mock_transfers_listener;
/* the risk provider's (risk.c), on a port of its own */
static int  mock_risk_listener;

static atomic_int  mock_stopped;


void
mock_log(const char *fmt, ...)
{
    va_list  ap;
    char     line[1024];

    /* One fprintf per line: stderr is unbuffered, lines stay whole. */
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    fprintf(stderr, "mock_psp: %s\n", line);
}


static void
mock_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char  line[1024];
    int   n;

    (void) cls;

    n = vsnprintf(line, sizeof(line), fmt, ap);
    if (n > 0 && (size_t) n < sizeof(line) && line[n - 1] == '\n') {
        line[n - 1] = '\0';
    }

    /*
     * Said for every deliberate drop and hang (our handler returned MHD_NO),
     * which mock_log() already reports with the reason.
     */
    if (strncmp(line, "Application reported internal error", 35) == 0) {
        return;
    }

    fprintf(stderr, "mock_psp: microhttpd: %s\n", line);
}


static void
mock_usage(FILE *f)
{
    fprintf(f,
        "usage: mock_psp --port N [--listen 127.0.0.1] --stripe-secret S\n"
        "                [--public-url http://127.0.0.1:N] [--latency-ms N]\n"
        "                [--webhook-url URL --stripe-webhook-secret S]\n"
        "                [--webhook-ca FILE] [--webhook-retry-ms N]\n"
        "                [--adyen-secret K --adyen-hmac-key HEX64\n"
        "                 [--adyen-webhook-url URL] [--adyen-specs DIR]\n"
        "                 [--adyen-transfers-port N\n"
        "                  --adyen-transfers-secret K]]\n"
        "                [--generic-secret K --generic-jwt-key PEM\n"
        "                 [--generic-jwt-kid KID] [--generic-jwt-iss ISS]\n"
        "                 [--generic-jwt-aud AUD] [--generic-jwt-header NAME]\n"
        "                 [--generic-webhook-url URL]]\n"
        "                [--risk-port N --risk-secret S\n"
        "                 [--risk-answer-secret S] [--risk-latency-ms N]]\n"
        "  --port N            TCP port; 0 picks a free one\n"
        "  --listen ADDR       numeric IPv4 or IPv6 address (127.0.0.1)\n"
        "  --stripe-secret S   the Bearer secret Stripe requests must carry\n"
        "  --stripe-live-secret S\n"
        "                      a second one accepted (a live key, for a\n"
        "                      mode=live PSP in front of the mock)\n"
        "  --public-url URL    origin of the hosted pages in session urls\n"
        "  --latency-ms N      delay before every Stripe API answer (0)\n"
        "  --webhook-url URL   where webhooks are POSTed (none: only logged)\n"
        "  --stripe-webhook-secret S\n"
        "                      the whsec_... secret webhooks are signed with\n"
        "  --webhook-ca FILE   CA (or certificate) PEM that verifies the\n"
        "                      webhook endpoint (the system store)\n"
        "  --webhook-retry-ms N  first retry delay, doubling up to 5 s,\n"
        "                      10 attempts in all (500)\n"
        "  --adyen-secret K    serve POST /v71/sessions; X-API-Key must be K\n"
        "  --adyen-hmac-key HEX  the 64-hex-digit key notifications are\n"
        "                      signed with\n"
        "  --adyen-webhook-url URL  where Adyen notifications go\n"
        "  --adyen-specs DIR   Adyen's OpenAPI documents every Adyen request\n"
        "                      is checked against (" MOCK_SPEC_DIR ")\n"
        "  --adyen-transfers-port N  serve Adyen's Transfers API\n"
        "                      (POST /btl/v4/transfers) on this port, as\n"
        "                      Adyen serves it on a host of its own; 0 picks\n"
        "                      a free one (the second stdout line names it)\n"
        "  --adyen-transfers-secret K  the X-API-Key the Transfers API takes\n"
        "  --generic-secret K  serve POST /sessions; Bearer K\n"
        "  --generic-jwt-key PEM  EC P-256 private key for the webhooks' ES256\n"
        "                      JWT (Payments-Verification)\n"
        "  --generic-jwt-kid KID  its kid (mock-es256)\n"
        "  --generic-jwt-iss ISS  an iss claim (none)\n"
        "  --generic-jwt-aud AUD  an aud claim (none)\n"
        "  --generic-jwt-header NAME  the JWT's header\n"
        "                      (Payments-Verification)\n"
        "  --generic-webhook-url URL  where generic webhooks go\n"
        "  --risk-port N       serve a risk provider (POST /risk, risk.c) on\n"
        "                      this port; 0 picks a free one (a stdout line\n"
        "                      names it)\n"
        "  --risk-secret S     the secret the gateway signs requests with\n"
        "  --risk-answer-secret S  sign answers with it (unsigned without)\n"
        "  --risk-latency-ms N  delay before every risk answer (0)\n"
        "Each PSP's webhooks go to its own URL; without one its events are\n"
        "only logged.\n"
        "The first line on stdout is \"mock_psp listening on URL\".\n");
}


static int mock_jwt_text(const char *s);
static int mock_header_name(const char *s);


static int
mock_parse_long(const char *s, long min, long max, long *out)
{
    char  *end;
    long   v;

    if (*s < '0' || *s > '9') {
        return -1;
    }

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }

    *out = v;
    return 0;
}


static int
mock_parse_args(int argc, char **argv)
{
    int    ch, have_port;
    long   v;
    char  *public_url;

    static const struct option  opts[] = {
        { "port",          required_argument, NULL, 'p' },
        { "listen",        required_argument, NULL, 'l' },
        { "stripe-secret", required_argument, NULL, 's' },
        { "stripe-live-secret", required_argument, NULL, 'S' },
        { "public-url",    required_argument, NULL, 'u' },
        { "latency-ms",    required_argument, NULL, 'L' },
        { "webhook-url",   required_argument, NULL, 'w' },
        { "stripe-webhook-secret", required_argument, NULL, 'W' },
        { "webhook-ca",    required_argument, NULL, 'c' },
        { "webhook-retry-ms", required_argument, NULL, 'r' },
        { "adyen-secret",  required_argument, NULL, 'A' },
        { "adyen-hmac-key", required_argument, NULL, 'H' },
        { "adyen-webhook-url", required_argument, NULL, 'a' },
        { "adyen-specs",   required_argument, NULL, 'O' },
        { "adyen-transfers-port", required_argument, NULL, 'T' },
        { "adyen-transfers-secret", required_argument, NULL, 't' },
        { "generic-secret", required_argument, NULL, 'G' },
        { "generic-jwt-key", required_argument, NULL, 'K' },
        { "generic-jwt-kid", required_argument, NULL, 'k' },
        { "generic-webhook-url", required_argument, NULL, 'g' },
        { "generic-jwt-iss", required_argument, NULL, 'I' },
        { "generic-jwt-aud", required_argument, NULL, 'D' },
        { "generic-jwt-header", required_argument, NULL, 'N' },
        { "risk-port",     required_argument, NULL, 'R' },
        { "risk-secret",   required_argument, NULL, 'x' },
        { "risk-answer-secret", required_argument, NULL, 'X' },
        { "risk-latency-ms", required_argument, NULL, 'y' },
        { "help",          no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    mock_conf.listen = "127.0.0.1";
    mock_conf.adyen_specs = MOCK_SPEC_DIR;
    mock_conf.webhook_retry_ms = 500;
    mock_conf.generic_jwt_kid = "mock-es256";
    mock_conf.generic_jwt_header = "Payments-Verification";
    have_port = 0;
    public_url = NULL;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {

        case 'p':
            if (mock_parse_long(optarg, 0, 65535, &v) != 0) {
                fprintf(stderr, "mock_psp: bad --port \"%s\"\n", optarg);
                return -1;
            }
            mock_conf.port = (unsigned) v;
            have_port = 1;
            break;

        case 'l':
            mock_conf.listen = optarg;
            break;

        case 's':
            mock_conf.stripe_secret = optarg;
            break;

        case 'S':
            mock_conf.stripe_live_secret = optarg;
            break;

        case 'u':
            public_url = optarg;
            break;

        case 'L':
            if (mock_parse_long(optarg, 0, 3600 * 1000, &v) != 0) {
                fprintf(stderr, "mock_psp: bad --latency-ms \"%s\"\n",
                        optarg);
                return -1;
            }
            mock_conf.latency_ms = v;
            break;

        case 'w':
            if (strncmp(optarg, "http://", 7) != 0
                && strncmp(optarg, "https://", 8) != 0)
            {
                fprintf(stderr, "mock_psp: bad --webhook-url \"%s\"\n",
                        optarg);
                return -1;
            }
            mock_conf.webhook_url = optarg;
            break;

        case 'W':
            mock_conf.stripe_webhook_secret = optarg;
            break;

        case 'c':
            mock_conf.webhook_ca = optarg;
            break;

        case 'r':
            /* more than the 5 s cap would be capped at once: say so */
            if (mock_parse_long(optarg, 1, 5000, &v) != 0) {
                fprintf(stderr, "mock_psp: bad --webhook-retry-ms \"%s\" "
                        "(1 to 5000)\n", optarg);
                return -1;
            }
            mock_conf.webhook_retry_ms = v;
            break;

        case 'A':
            mock_conf.adyen_secret = optarg;
            break;

        case 'O':
            mock_conf.adyen_specs = optarg;
            break;

        case 'T':
            if (mock_parse_long(optarg, 0, 65535, &v) != 0) {
                fprintf(stderr, "mock_psp: bad --adyen-transfers-port "
                        "\"%s\"\n", optarg);
                return -1;
            }
            mock_conf.adyen_transfers_port = (unsigned) v;
            mock_conf.adyen_transfers = 1;
            break;

        case 't':
            mock_conf.adyen_transfers_secret = optarg;
            break;

        case 'H':
            if (mock_adyen_hmac_key(optarg, mock_conf.adyen_hmac_key) != 0) {
                fprintf(stderr, "mock_psp: --adyen-hmac-key is 64 hex "
                        "digits\n");
                return -1;
            }
            mock_conf.adyen_hmac_set = 1;
            break;

        case 'a':
        case 'g':
            if (strncmp(optarg, "http://", 7) != 0
                && strncmp(optarg, "https://", 8) != 0)
            {
                fprintf(stderr, "mock_psp: bad webhook URL \"%s\"\n", optarg);
                return -1;
            }
            if (ch == 'a') {
                mock_conf.adyen_webhook_url = optarg;
            } else {
                mock_conf.generic_webhook_url = optarg;
            }
            break;

        case 'G':
            mock_conf.generic_secret = optarg;
            break;

        case 'K':
            if (mock_generic_load_key(optarg) != 0) {
                fprintf(stderr, "mock_psp: --generic-jwt-key \"%s\" is not "
                        "an EC P-256 private key in PEM\n", optarg);
                return -1;
            }
            break;

        case 'k':
        case 'I':
        case 'D':
            if (!mock_jwt_text(optarg)) {
                fprintf(stderr, "mock_psp: a JWT kid, iss or aud is 1 to 256 "
                        "printable ASCII characters, not \"%s\"\n", optarg);
                return -1;
            }
            if (ch == 'k') {
                mock_conf.generic_jwt_kid = optarg;
            } else if (ch == 'I') {
                mock_conf.generic_jwt_iss = optarg;
            } else {
                mock_conf.generic_jwt_aud = optarg;
            }
            break;

        case 'N':
            if (!mock_header_name(optarg)) {
                fprintf(stderr, "mock_psp: bad --generic-jwt-header \"%s\"\n",
                        optarg);
                return -1;
            }
            mock_conf.generic_jwt_header = optarg;
            break;

        case 'R':
            if (mock_parse_long(optarg, 0, 65535, &v) != 0) {
                fprintf(stderr, "mock_psp: bad --risk-port \"%s\"\n",
                        optarg);
                return -1;
            }
            mock_conf.risk_port = (unsigned) v;
            mock_conf.risk = 1;
            break;

        case 'x':
            mock_conf.risk_secret = optarg;
            break;

        case 'X':
            mock_conf.risk_answer_secret = optarg;
            break;

        case 'y':
            if (mock_parse_long(optarg, 0, 60000, &v) != 0) {
                fprintf(stderr, "mock_psp: bad --risk-latency-ms \"%s\"\n",
                        optarg);
                return -1;
            }
            mock_conf.risk_latency_ms = v;
            break;

        case 'h':
            mock_usage(stdout);
            exit(0);

        default:
            mock_usage(stderr);
            return -1;
        }
    }

    if (optind != argc || !have_port || mock_conf.stripe_secret == NULL
        || mock_conf.stripe_secret[0] == '\0')
    {
        mock_usage(stderr);
        return -1;
    }

    /* Stripe signs every webhook: an unsigned one would test nothing. */
    if (mock_conf.webhook_url != NULL
        && (mock_conf.stripe_webhook_secret == NULL
            || mock_conf.stripe_webhook_secret[0] == '\0'))
    {
        fprintf(stderr, "mock_psp: --webhook-url needs "
                "--stripe-webhook-secret\n");
        return -1;
    }

    /* each PSP signs its webhooks: an unsigned one would test nothing */
    if ((mock_conf.adyen_webhook_url != NULL && !mock_conf.adyen_hmac_set)
        || (mock_conf.generic_webhook_url != NULL
            && mock_conf.generic_jwt_key == NULL))
    {
        fprintf(stderr, "mock_psp: --adyen-webhook-url needs "
                "--adyen-hmac-key, --generic-webhook-url needs "
                "--generic-jwt-key\n");
        return -1;
    }

    /* the Transfers API takes its own key, and is Adyen's */
    if (mock_conf.adyen_transfers
        && (mock_conf.adyen_secret == NULL
            || mock_conf.adyen_transfers_secret == NULL
            || mock_conf.adyen_transfers_secret[0] == '\0'))
    {
        fprintf(stderr, "mock_psp: --adyen-transfers-port needs "
                "--adyen-secret and --adyen-transfers-secret\n");
        return -1;
    }

    /* the provider verifies every request: it needs the secret */
    if (mock_conf.risk
        && (mock_conf.risk_secret == NULL || mock_conf.risk_secret[0] == '\0'))
    {
        fprintf(stderr, "mock_psp: --risk-port needs --risk-secret\n");
        return -1;
    }

    if (mock_conf.webhook_ca != NULL
        && access(mock_conf.webhook_ca, R_OK) != 0)
    {
        fprintf(stderr, "mock_psp: cannot read --webhook-ca \"%s\"\n",
                mock_conf.webhook_ca);
        return -1;
    }

    if (public_url != NULL) {
        if (strncmp(public_url, "http://", 7) != 0
            && strncmp(public_url, "https://", 8) != 0)
        {
            fprintf(stderr, "mock_psp: bad --public-url \"%s\"\n",
                    public_url);
            return -1;
        }

        mock_conf.public_url = strdup(public_url);
        if (mock_conf.public_url == NULL) {
            return -1;
        }

        /* Session urls are built as public_url + "/pay/" + id. */
        v = (long) strlen(mock_conf.public_url);
        while (v > 0 && mock_conf.public_url[v - 1] == '/') {
            mock_conf.public_url[--v] = '\0';
        }
    }

    return 0;
}


/* Every connection is a descriptor and a thread; 1024 would cap both. */
static void
mock_raise_fd_limit(void)
{
    struct rlimit  rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }

    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (rl.rlim_cur < MOCK_CONNECTION_LIMIT + 64) {
        mock_log("warning: open file limit %llu is below %d connections",
                 (unsigned long long) rl.rlim_cur, MOCK_CONNECTION_LIMIT);
    }
}


static int
mock_sockaddr(struct sockaddr_storage *ss, unsigned *flags, unsigned port)
{
    struct sockaddr_in   *sin;
    struct sockaddr_in6  *sin6;

    memset(ss, 0, sizeof(*ss));

    sin = (struct sockaddr_in *) ss;
    if (inet_pton(AF_INET, mock_conf.listen, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t) port);
        return 0;
    }

    sin6 = (struct sockaddr_in6 *) ss;
    if (inet_pton(AF_INET6, mock_conf.listen, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t) port);
        *flags |= MHD_USE_IPv6;
        return 0;
    }

    fprintf(stderr, "mock_psp: --listen needs a numeric address, not \"%s\"\n",
            mock_conf.listen);
    return -1;
}


/*
 * MHD_stop_daemon() joins every connection thread.  Our own sleeps wake on
 * mock_sleep_interrupt() and MHD shuts the sockets down, so it returns at
 * once in practice; this bounds it if something still hangs.
 */
static void *
mock_watchdog(void *arg)
{
    (void) arg;

    sleep(MOCK_STOP_BOUND);

    /* the daemon stopped: what remains (frees, LSan at exit) is not ours */
    if (atomic_load(&mock_stopped)) {
        return NULL;
    }

    mock_log("connections still open %d s after the stop signal; exiting",
             MOCK_STOP_BOUND);
    _exit(3);

    return NULL;
}


/* One listener; cls tells mock_handler which: NULL the main one. */
static struct MHD_Daemon *
mock_listen(unsigned port, void *cls, unsigned *bound)
{
    unsigned                      flags;
    struct MHD_Daemon            *d;
    struct sockaddr_storage       ss;
    const union MHD_DaemonInfo   *info;

    flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD
            /* poll(), not select(): descriptors above FD_SETSIZE work */
            | MHD_USE_POLL
            | MHD_USE_ITC
            | MHD_USE_ERROR_LOG;

    if (mock_sockaddr(&ss, &flags, port) != 0) {
        return NULL;
    }

    d = MHD_start_daemon(flags, (uint16_t) port, NULL, NULL,
                         mock_handler, cls,
                         /* first, or MHD logs some messages its own way */
                         MHD_OPTION_EXTERNAL_LOGGER, mock_mhd_log, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
                         MHD_OPTION_CONNECTION_LIMIT,
                             (unsigned) MOCK_CONNECTION_LIMIT,
                         MHD_OPTION_CONNECTION_TIMEOUT,
                             (unsigned) MOCK_IDLE_TIMEOUT,
                         MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned) 4096,
                         MHD_OPTION_THREAD_STACK_SIZE,
                             (size_t) MOCK_STACK_SIZE,
                         MHD_OPTION_NOTIFY_COMPLETED, mock_completed, NULL,
                         MHD_OPTION_END);
    if (d == NULL) {
        mock_log("cannot listen on %s port %u", mock_conf.listen, port);
        return NULL;
    }

    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound = (info != NULL) ? info->port : port;

    return d;
}


static void
mock_url(char *url, size_t size, unsigned port)
{
    if (strchr(mock_conf.listen, ':') != NULL) {
        snprintf(url, size, "http://[%s]:%u",
                 strcmp(mock_conf.listen, "::") == 0 ? "::1"
                                                     : mock_conf.listen,
                 port);
    } else {
        snprintf(url, size, "http://%s:%u",
                 strcmp(mock_conf.listen, "0.0.0.0") == 0 ? "127.0.0.1"
                                                          : mock_conf.listen,
                 port);
    }
}


int
main(int argc, char **argv)
{
    int                       sig;
    unsigned                  port, tport, rport;
    sigset_t                  set;
    pthread_t                 tid;
    struct MHD_Daemon        *d, *td, *rd;
    char                      url[128], turl[128];

    if (mock_parse_args(argc, argv) != 0) {
        return 2;
    }

    if (mock_store_init() != 0 || mock_sleep_init() != 0
        || mock_webhook_init() != 0)
    {
        mock_log("cannot initialise");
        return 1;
    }

    /* Adyen's requests are checked against its own documents: without
     * them there would be nothing to check against */
    if (mock_conf.adyen_secret != NULL
        && mock_spec_load(mock_conf.adyen_specs) != 0)
    {
        mock_log("cannot load Adyen's OpenAPI documents from %s",
                 mock_conf.adyen_specs);
        mock_store_destroy();
        return 2;
    }

    mock_raise_fd_limit();

    /*
     * Block the stop signals before any thread exists so that every MHD
     * thread inherits the mask and sigwait() below is their only receiver.
     */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    td = NULL;
    rd = NULL;
    d = mock_listen(mock_conf.port, NULL, &port);

    if (d != NULL && mock_conf.risk) {
        rd = mock_listen(mock_conf.risk_port, &mock_risk_listener, &rport);
        if (rd == NULL) {
            MHD_stop_daemon(d);
            d = NULL;
        }
    }

    if (d != NULL && mock_conf.adyen_transfers) {
        td = mock_listen(mock_conf.adyen_transfers_port,
                         &mock_transfers_listener, &tport);
        if (td == NULL) {
            MHD_stop_daemon(d);
            d = NULL;
            if (rd != NULL) {
                MHD_stop_daemon(rd);
            }
        }
    }

    if (d == NULL) {
        mock_spec_free();
        mock_store_destroy();
        return 1;
    }

    mock_url(url, sizeof(url), port);

    if (mock_conf.public_url == NULL) {
        mock_conf.public_url = strdup(url);
        if (mock_conf.public_url == NULL) {
            MHD_stop_daemon(d);
            if (td != NULL) {
                MHD_stop_daemon(td);
            }
            mock_spec_free();
            mock_store_destroy();
            return 1;
        }
    }

    /* Harnesses started with --port 0 read the port from this line. */
    printf("mock_psp listening on %s\n", url);

    if (td != NULL) {
        mock_url(turl, sizeof(turl), tport);
        printf("mock_psp adyen transfers listening on %s\n", turl);
        mock_log("Adyen Transfers API: POST %s/transfers on %s",
                 mock_spec_base(MOCK_SPEC_TRANSFERS), turl);
    }

    if (rd != NULL) {
        mock_url(turl, sizeof(turl), rport);
        printf("mock_psp risk provider listening on %s\n", turl);
        mock_log("risk provider: POST /risk on %s, answers %s, latency "
                 "%ld ms", turl,
                 mock_conf.risk_answer_secret ? "signed" : "unsigned",
                 mock_conf.risk_latency_ms);
    }

    fflush(stdout);

    mock_log("listening on %s, public url %s, latency %ld ms", url,
             mock_conf.public_url, mock_conf.latency_ms);

    if (mock_conf.webhook_url != NULL) {
        mock_log("webhooks to %s (stripe), CA %s, first retry after %ld ms",
                 mock_conf.webhook_url,
                 mock_conf.webhook_ca ? mock_conf.webhook_ca : "(system)",
                 mock_conf.webhook_retry_ms);
    } else {
        mock_log("no --webhook-url: Stripe events are only logged");
    }

    if (mock_conf.adyen_secret != NULL) {
        mock_log("Adyen: POST /v71/sessions; notifications %s%s",
                 mock_conf.adyen_webhook_url ? "to "
                                             : "only logged (no URL)",
                 mock_conf.adyen_webhook_url ? mock_conf.adyen_webhook_url
                                             : "");
    }

    if (mock_conf.generic_secret != NULL) {
        mock_log("generic: POST /sessions; webhooks %s%s, JWT kid %s in %s",
                 mock_conf.generic_webhook_url ? "to "
                                               : "only logged (no URL)",
                 mock_conf.generic_webhook_url
                 ? mock_conf.generic_webhook_url : "",
                 mock_conf.generic_jwt_kid, mock_conf.generic_jwt_header);
    }

    do {
        if (sigwait(&set, &sig) != 0) {
            sig = SIGTERM;
        }
    } while (sig != SIGINT && sig != SIGTERM);

    mock_log("signal %d, stopping", sig);

    if (pthread_create(&tid, NULL, mock_watchdog, NULL) == 0) {
        pthread_detach(tid);
    }

    mock_sleep_interrupt();
    mock_webhook_shutdown();
    MHD_stop_daemon(d);
    if (td != NULL) {
        MHD_stop_daemon(td);
    }
    if (rd != NULL) {
        MHD_stop_daemon(rd);
    }
    mock_risk_reset();
    /* after the daemon: no connection can start a delivery any more */
    mock_webhook_wait();
    atomic_store(&mock_stopped, 1);

    mock_store_destroy();
    mock_spec_free();
    free(mock_conf.public_url);
    EVP_PKEY_free(mock_conf.generic_jwt_key);

    mock_log("stopped");
    return 0;
}


static enum MHD_Result
mock_handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
    size_t           need, cap;
    char            *p;
    mock_request_t  *r;

    (void) version;

    r = *con_cls;

    if (r == NULL) {
        r = calloc(1, sizeof(mock_request_t));
        if (r == NULL) {
            return MHD_NO;
        }
        *con_cls = r;
        return MHD_YES;
    }

    if (*upload_data_size != 0) {
        need = r->len + *upload_data_size;

        if (r->too_large || need > MOCK_MAX_BODY) {
            /* Keep reading so that the 413 can be sent afterwards. */
            r->too_large = 1;
            *upload_data_size = 0;
            return MHD_YES;
        }

        if (need + 1 > r->cap) {
            cap = r->cap ? r->cap : 1024;
            while (cap < need + 1) {
                cap *= 2;
            }
            p = realloc(r->body, cap);
            if (p == NULL) {
                return MHD_NO;
            }
            r->body = p;
            r->cap = cap;
        }

        memcpy(r->body + r->len, upload_data, *upload_data_size);
        r->len = need;
        r->body[r->len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (cls == &mock_risk_listener) {
        return mock_risk_route(c, r, url, method);
    }

    return cls == &mock_transfers_listener
           ? mock_route_transfers(c, r, url, method)
           : mock_route(c, r, url, method);
}


/* 1 to 256 printable ASCII characters: a kid, iss or aud of the mock's. */
static int
mock_jwt_text(const char *s)
{
    size_t  i;

    for (i = 0; s[i]; i++) {
        if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] >= 0x7f) {
            return 0;
        }
    }

    return i >= 1 && i <= 256;
}


/* An HTTP field name (RFC 9110 token), at most 64 characters. */
static int
mock_header_name(const char *s)
{
    size_t  n;

    n = strspn(s, "!#$%&'*+-.^_`|~0123456789"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    return n >= 1 && n <= 64 && s[n] == '\0';
}


/* url is prefix "/" id "/expire", id one non-empty segment */
static int
mock_expire_path(const char *url, const char *prefix)
{
    size_t       n, len;
    const char  *id;

    n = strlen(prefix);
    len = strlen(url);

    if (strncmp(url, prefix, n) != 0 || url[n] != '/'
        || len < n + 1 + sizeof("/expire")
        || strcmp(url + len - (sizeof("/expire") - 1), "/expire") != 0)
    {
        return 0;
    }

    id = url + n + 1;

    return memchr(id, '/', (size_t) (url + len - (sizeof("/expire") - 1)
                                     - id)) == NULL;
}


/* the id of an expire path, in a static buffer (one per thread) */
static const char *
mock_expire_id(const char *url, const char *prefix)
{
    static __thread char  id[512];
    size_t                n;

    url += strlen(prefix) + 1;
    n = strlen(url) - (sizeof("/expire") - 1);

    if (n >= sizeof(id)) {
        n = sizeof(id) - 1;
    }

    memcpy(id, url, n);
    id[n] = '\0';

    return id;
}


/* url is prefix, one segment (into id) and suffix: 1, else 0 */
static int
mock_path_id(const char *url, const char *prefix, const char *suffix,
    char *id, size_t size)
{
    size_t       n, p, sl;
    const char  *end;

    p = strlen(prefix);
    sl = strlen(suffix);

    if (strncmp(url, prefix, p) != 0) {
        return 0;
    }

    url += p;
    end = strchr(url, '/');
    n = end ? (size_t) (end - url) : strlen(url);

    if (n == 0 || n >= size || strcmp(url + n, suffix) != 0
        || (sl == 0 && end != NULL))
    {
        return 0;
    }

    memcpy(id, url, n);
    id[n] = '\0';

    return 1;
}


static enum MHD_Result
mock_route(struct MHD_Connection *c, mock_request_t *r, const char *url,
    const char *method)
{
    char               id[128];
    static const char  sessions[] = "/v1/checkout/sessions";

    if (r->body == NULL) {
        r->body = calloc(1, 1);
        if (r->body == NULL) {
            return MHD_NO;
        }
        r->cap = 1;
    }

    if (r->too_large) {
        return mock_stripe_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                                 "invalid_request_error", NULL, NULL,
                                 "Request body larger than %d bytes.",
                                 MOCK_MAX_BODY);
    }

    if (strncmp(url, "/_control/", 10) == 0) {
        return mock_control(c, method, url + 10, r);
    }

    if (strncmp(url, "/pay/", 5) == 0) {
        return mock_hosted(c, method, url + 5);
    }

    /* Adyen: Checkout's paths against its document; the Transfers API is
     * on another host (here: --adyen-transfers-port), never this one */
    if (mock_conf.adyen_secret != NULL && strncmp(url, "/btl/", 5) == 0) {
        mock_log("adyen: %s %s on the Checkout port: 404 (the Transfers "
                 "API is on its own port)", method, url);
        return mock_adyen_error(c, MHD_HTTP_NOT_FOUND, "000", "validation",
                                "Not Found");
    }

    if (mock_conf.adyen_secret != NULL && strncmp(url, "/v71/", 5) == 0) {
        enum MHD_Result  rc;

        if (mock_adyen_spec(c, MOCK_SPEC_CHECKOUT, r, url, method, &rc)
            != 0)
        {
            return rc;
        }
    }

    {
        int              handled;
        enum MHD_Result  rc;

        rc = mock_capture_route(c, method, url, r, &handled);
        if (handled) {
            return rc;
        }

        rc = mock_money_route(c, method, url, r, &handled);
        if (handled) {
            return rc;
        }
    }

    if (strcmp(url, sessions) == 0 && strcmp(method, "POST") == 0) {
        return mock_stripe_create(c, r);
    }

    /* a saved method detached by the gateway (vault.c) */
    if (strcmp(method, "POST") == 0
        && mock_path_id(url, "/v1/payment_methods/", "/detach", id,
                        sizeof(id)))
    {
        return mock_vault_detach(c, "stripe", id);
    }

    if (strcmp(method, "DELETE") == 0 && mock_conf.adyen_secret != NULL
        && mock_path_id(url, "/v71/storedPaymentMethods/", "", id,
                        sizeof(id)))
    {
        return mock_vault_detach(c, "adyen", id);
    }

    if (strcmp(method, "DELETE") == 0 && mock_conf.generic_secret != NULL
        && mock_path_id(url, "/payment_methods/", "", id, sizeof(id)))
    {
        return mock_vault_detach(c, "generic", id);
    }

    /* a charge looked up by its nonce (vault.c): before the look-up by
     * id, whose path this one would match */
    if (strcmp(method, "GET") == 0
        && strcmp(url, "/v1/payment_intents/search") == 0)
    {
        return mock_vault_search(c, "stripe",
                                 MHD_lookup_connection_value(
                                     c, MHD_GET_ARGUMENT_KIND, "query"));
    }

    if (strcmp(method, "GET") == 0 && mock_conf.generic_secret != NULL
        && strcmp(url, "/payments") == 0)
    {
        return mock_vault_search(c, "generic",
                                 MHD_lookup_connection_value(
                                     c, MHD_GET_ARGUMENT_KIND, "reference"));
    }

    /* a charge looked up by its payment id (vault.c) */
    if (strcmp(method, "GET") == 0
        && mock_path_id(url, "/v1/payment_intents/", "", id, sizeof(id)))
    {
        return mock_vault_retrieve(c, "stripe", id);
    }

    if (strcmp(method, "GET") == 0 && mock_conf.generic_secret != NULL
        && mock_path_id(url, "/payments/", "", id, sizeof(id)))
    {
        return mock_vault_retrieve(c, "generic", id);
    }

    /* off-session charges of saved methods (vault.c) */
    if (strcmp(url, "/v1/payment_intents") == 0 && strcmp(method, "POST") == 0)
    {
        return mock_stripe_charge(c, r);
    }

    if (strcmp(url, "/v71/payments") == 0 && strcmp(method, "POST") == 0
        && mock_conf.adyen_secret != NULL)
    {
        return mock_adyen_charge(c, r);
    }

    if (strcmp(url, "/payments") == 0 && strcmp(method, "POST") == 0
        && mock_conf.generic_secret != NULL)
    {
        return mock_generic_charge(c, r);
    }

    if (strcmp(url, "/v71/sessions") == 0 && strcmp(method, "POST") == 0
        && mock_conf.adyen_secret != NULL)
    {
        return mock_adyen_create(c, r);
    }

    if (strcmp(url, "/sessions") == 0 && strcmp(method, "POST") == 0
        && mock_conf.generic_secret != NULL)
    {
        return mock_generic_create(c, r);
    }

    /* a session ended on demand: .../{id}/expire */
    if (strcmp(method, "POST") == 0 && mock_expire_path(url, sessions)) {
        return mock_stripe_expire_call(c, mock_expire_id(url, sessions));
    }

    if (strcmp(method, "POST") == 0 && mock_conf.generic_secret != NULL
        && mock_expire_path(url, "/sessions"))
    {
        return mock_generic_expire_call(c, mock_expire_id(url, "/sessions"));
    }

    if (strncmp(url, sessions, sizeof(sessions) - 1) == 0
        && url[sizeof(sessions) - 1] == '/'
        && strcmp(method, "GET") == 0)
    {
        return mock_stripe_retrieve(c, url + sizeof(sessions));
    }

    /* the session look-ups of the other two dialects */
    if (strncmp(url, "/v71/sessions/", 14) == 0 && url[14] != '\0'
        && strcmp(method, "GET") == 0 && mock_conf.adyen_secret != NULL)
    {
        return mock_adyen_lookup(c, url + 14);
    }

    if (strncmp(url, "/sessions/", 10) == 0 && url[10] != '\0'
        && strcmp(method, "GET") == 0 && mock_conf.generic_secret != NULL)
    {
        return mock_generic_lookup(c, url + 10);
    }

    return mock_stripe_error(c, MHD_HTTP_NOT_FOUND, "invalid_request_error",
                             NULL, NULL, "Unrecognized request URL (%s: %s).",
                             method, url);
}


static void
mock_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
    mock_request_t  *r;

    (void) cls;
    (void) c;
    (void) toe;

    r = *con_cls;
    if (r != NULL) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}


/* The X-API-Key is the API's (constant time); 0 when not. */
static int
mock_adyen_key_is(struct MHD_Connection *c, const char *secret)
{
    size_t       len;
    const char  *key;

    key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    if (key == NULL || secret == NULL) {
        return 0;
    }

    len = strlen(secret);

    return strlen(key) == len && CRYPTO_memcmp(key, secret, len) == 0;
}


/*
 * The request against Adyen's document of the API (spec.c): 0 when it
 * passes, else 1 with the answer sent (*rc): 404, 405, or 422 errorCode
 * 702 with the rule, as Adyen refuses a request it cannot take.  A
 * request without the API's key, or whose body is not JSON by its type,
 * is not checked: the API's own handler answers it (401, 415) first.
 */
static int
mock_adyen_spec(struct MHD_Connection *c, mock_spec_api_e api,
    mock_request_t *r, const char *url, const char *method,
    enum MHD_Result *rc)
{
    int          status;
    size_t       n;
    const char  *ctype;
    char         why[512], message[640];

    if (!mock_adyen_key_is(c, api == MOCK_SPEC_TRANSFERS
                              ? mock_conf.adyen_transfers_secret
                              : mock_conf.adyen_secret))
    {
        return 0;
    }

    /* a body that is not JSON by its type: the handler's 415 */
    ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_CONTENT_TYPE);
    n = sizeof("application/json") - 1;

    if (r->len != 0
        && (ctype == NULL || strncasecmp(ctype, "application/json", n) != 0
            || (ctype[n] != '\0' && ctype[n] != ';')))
    {
        return 0;
    }

    status = mock_spec_check(api, c, method, url, r->body, r->len, why,
                             sizeof(why));
    if (status == 0) {
        return 0;
    }

    mock_log("adyen: %s %s refused by Adyen's document: %d %s", method, url,
             status, why);

    snprintf(message, sizeof(message), "%s (Adyen's OpenAPI document)",
             why);

    *rc = mock_adyen_error(c, (unsigned) status,
                           status == 422 ? "702" : "000", "validation",
                           message);
    return 1;
}


/*
 * The transfers listener: Adyen's Transfers API alone (its own host at
 * Adyen, its own key), every request checked against its document.
 */
static enum MHD_Result
mock_route_transfers(struct MHD_Connection *c, mock_request_t *r,
    const char *url, const char *method)
{
    enum MHD_Result  rc;

    if (r->body == NULL) {
        r->body = calloc(1, 1);
        if (r->body == NULL) {
            return MHD_NO;
        }
        r->cap = 1;
    }

    if (r->too_large) {
        return mock_adyen_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "000",
                                "validation", "Request body too large");
    }

    if (mock_adyen_spec(c, MOCK_SPEC_TRANSFERS, r, url, method, &rc) != 0) {
        return rc;
    }

    if (strcmp(method, "POST") == 0 && strcmp(url, "/btl/v4/transfers") == 0)
    {
        return mock_adyen_transfer(c, r);
    }

    mock_log("adyen transfers: %s %s: 404 (not served by the mock)", method,
             url);

    return mock_adyen_error(c, MHD_HTTP_NOT_FOUND, "000", "validation",
                            "Not Found");
}
