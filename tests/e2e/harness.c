/*
 * End-to-end test harness: the core: environment, strings, processes and files.
 * What it offers: harness_core.h.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"


/* -- environment and strings ---------------------------------------------- */

const char *
env(const char *name)
{
    const char  *v;

    v = getenv(name);
    cr_assert(v != NULL && v[0] != '\0',
              "%s is not set: run the suite through ci/e2e.sh", name);
    return v;
}


char *
str_printf(const char *fmt, ...)
{
    int      n;
    char    *s;
    va_list  ap;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);

    cr_assert(n >= 0, "out of memory");
    return s;
}


int
mem_contains(const char *haystack, size_t len, const char *needle)
{
    return memmem(haystack, len, needle, strlen(needle)) != NULL;
}


char *
uid(const char *prefix)
{
    static unsigned  counter;

    unsigned long    us;
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    us = ((unsigned long) ts.tv_sec * 1000000UL
          + (unsigned long) ts.tv_nsec / 1000UL) & 0xffffffffUL;

    return str_printf("%s_%07ld_%04u_%08lx", prefix,
                      (long) getpid() % 10000000L, counter++ % 10000U, us);
}


void
e2e_warn(const char *fmt, ...)
{
    va_list  ap;

    fputs("[WARN] ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}


void
msleep(long ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        /* the rest */
    }
}


long
ms_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}


/* -- processes --------------------------------------------------------------- */

/*
 * Runs argv (no shell), stdin from /dev/null; its stdout and stderr are
 * returned when out is not NULL (else inherited).  Returns the exit
 * status, or -1.
 */

int
run(char *const argv[], char **out)
{
    int      pipefd[2], status, fd;
    char     buf[4096];
    char    *acc, *p;
    pid_t    pid;
    size_t   len;
    ssize_t  n;

    if (out != NULL) {
        cr_assert_eq(pipe(pipefd), 0, "pipe: %s", strerror(errno));
    }

    pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));

    if (pid == 0) {
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 0);
        }

        if (out != NULL) {
            /* stderr too: a failure's message ends up in the assertion */
            dup2(pipefd[1], 1);
            dup2(pipefd[1], 2);
            close(pipefd[0]);
            close(pipefd[1]);
        }

        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }

    if (out != NULL) {
        close(pipefd[1]);

        acc = NULL;
        len = 0;

        for ( ;; ) {
            n = read(pipefd[0], buf, sizeof(buf));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                break;
            }

            p = realloc(acc, len + (size_t) n + 1);
            cr_assert_not_null(p, "out of memory");
            acc = p;
            memcpy(acc + len, buf, (size_t) n);
            len += (size_t) n;
            acc[len] = '\0';
        }

        close(pipefd[0]);
        *out = acc != NULL ? acc : strdup("");
    }

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }

    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}


/* -- files ------------------------------------------------------------------- */

char *
run_file(const char *rel)
{
    return str_printf("%s/%s", env("PAY_TEST_RUN"), rel);
}


char *
build_file(const char *rel)
{
    const char  *build = getenv("BUILD") ? getenv("BUILD") : "build";

    if (build[0] == '/') {
        return str_printf("%s/%s", build, rel);
    }

    return str_printf("%s/%s/%s", env("PAY_TEST_ROOT"), build, rel);
}


char *
file_read(const char *path, size_t *len)
{
    char    *buf, *p;
    FILE    *f;
    size_t   n, cap;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    cap = 65536;
    n = 0;
    buf = malloc(cap + 1);
    cr_assert_not_null(buf);

    for ( ;; ) {
        n += fread(buf + n, 1, cap - n, f);

        if (n < cap) {
            break;
        }

        cap *= 2;
        p = realloc(buf, cap + 1);
        cr_assert_not_null(p);
        buf = p;
    }

    fclose(f);
    buf[n] = '\0';

    if (len != NULL) {
        *len = n;
    }

    return buf;
}


int
file_contains(const char *path, const char *needle)
{
    int      found;
    char    *s;
    size_t   len;

    s = file_read(path, &len);
    if (s == NULL) {
        return 0;
    }

    found = mem_contains(s, len, needle);
    free(s);

    return found;
}
