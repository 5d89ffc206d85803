/*
 * The e2e harness: the limits' Redis (harness_redis.h).
 */

#include "harness.h"
#include "harness_redis.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


const char  *redis_extra_conf;

long               redis_port;
char       *redis_dir;


/* a client of the test's own, to look into Redis */

redisContext *
redis_client(void)
{
    redisContext  *c;
    redisReply    *r;

    c = redisConnect("127.0.0.1", (int) redis_port);
    cr_assert(c != NULL && c->err == 0, "cannot connect to the test's Redis");

    r = redisCommand(c, "AUTH %s", REDIS_PASSWORD);
    cr_assert(r != NULL && r->type == REDIS_REPLY_STATUS, "AUTH failed");
    freeReplyObject(r);

    return c;
}


int
redis_answers(void)
{
    redisContext  *c;
    redisReply    *r;
    int            ok;

    c = redisConnect("127.0.0.1", (int) redis_port);
    if (c == NULL || c->err) {
        if (c) {
            redisFree(c);
        }

        return 0;
    }

    r = redisCommand(c, "PING");
    ok = r != NULL;     /* NOAUTH is an answer too */
    if (r) {
        freeReplyObject(r);
    }

    redisFree(c);

    return ok;
}


/*
 * redis-server on redis_port (a fresh one, or the same port again): a
 * child of the test's process, never a daemon, that the kernel kills when
 * the test's process ends however it ends (an assertion in the setup, a
 * timeout, a crash), so that no failed test leaves a Redis behind.
 */

pid_t  redis_child;

void
redis_start(void)
{
    int    i;
    FILE  *f;
    char  *conf;
    pid_t  pid, parent;

    conf = str_printf("%s/redis.conf", redis_dir);
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    /* 127.0.0.2 too: the address a test's preloaded getaddrinfo() hangs
     * on, which no other part of the gateway uses */
    fprintf(f,
            "bind 127.0.0.1 127.0.0.2\n"
            "port %ld\n"
            "daemonize no\n"
            "pidfile %s/redis.pid\n"
            "logfile %s/redis.log\n"
            "dir %s\n"
            "save \"\"\n"
            "appendonly no\n"
            "requirepass %s\n"
            "user %s on >%s ~* resetchannels -@all +auth +script|load "
            "+evalsha +eval +time +hmget +hset +hgetall +hdel +hincrby "
            "+pexpire\n%s",
            redis_port, redis_dir, redis_dir, redis_dir, REDIS_PASSWORD,
            REDIS_USER, REDIS_USER_PASSWORD,
            redis_extra_conf ? redis_extra_conf : "");
    fclose(f);

    unlink(str_printf("%s/redis.pid", redis_dir));

    parent = getpid();
    pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));

    if (pid == 0) {
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);

        /* the test's process went before the prctl() */
        if (getppid() != parent) {
            _exit(1);
        }

        execlp("redis-server", "redis-server", conf, (char *) NULL);
        _exit(127);
    }

    redis_child = pid;

    for (i = 0; i < 100 && !redis_answers(); i++) {
        cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0,
                     "redis-server exited (%s/redis.log)", redis_dir);
        msleep(20);
    }

    cr_assert(redis_answers(), "redis-server does not answer on %ld",
              redis_port);
}


void
redis_stop(void)
{
    if (redis_child <= 0) {
        return;
    }

    kill(redis_child, SIGCONT);
    kill(redis_child, SIGKILL);

    while (waitpid(redis_child, NULL, 0) < 0 && errno == EINTR) {
        /* void */
    }

    redis_child = 0;
    unlink(str_printf("%s/redis.pid", redis_dir));
}

double
fallbacks(const gateway_t *gw, const char *zone)
{
    return metric_value(gw->origin,
               str_printf("payments_limit_store_fallbacks_total{zone=\"%s\"}",
                          zone));
}


int
log_count(const gateway_t *gw, const char *needle)
{
    int     n;
    char   *text;
    size_t  len;
    const char  *p;

    text = file_read(gw->error_log, &len);
    if (text == NULL) {
        return 0;
    }

    n = 0;
    for (p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        n++;
    }

    return n;
}


/* a secret file of mode 0600 in the test's Redis directory */

char *
secret_file(const char *name, const char *value)
{
    char  *path;
    FILE  *f;

    path = str_printf("%s/%s", redis_dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s\n", value);
    fclose(f);
    cr_assert_eq(chmod(path, 0600), 0);

    return path;
}


