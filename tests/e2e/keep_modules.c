/*
 * An LD_PRELOAD shim for the sanitized e2e run with LeakSanitizer on
 * (ci/nginx-asan.sh, NGX_ASAN_LEAKS=1): dlclose() keeps every library
 * mapped.  An nginx worker unloads its dynamic modules as it exits (the
 * cycle's pool cleanup, before exit()), and the libraries the module
 * brought (libpq, libcurl, jansson...) go with it: LeakSanitizer, which
 * looks at exit, then finds memory still held by those libraries' global
 * data unreferenced (their data segments unmapped) and reports it as a
 * leak, with a stack it cannot name (the module's code gone too).  Kept
 * mapped, only memory nothing points to is a leak, and its stack is named.
 *
 * LeakSanitizer sees only memory nothing points to at exit; memory a
 * worker keeps reachable and never gives back (a list that grows with
 * each request) it cannot see.  So, with NGX_ASAN_ALLOCATED naming a
 * directory (ci/e2e.sh: RUN/allocated), SIGRTMIN+1 makes a process write
 * the bytes it has allocated and not freed (the sanitizer's count) to
 * DIR/allocated.<pid>, whole (written beside it, then renamed): the
 * growth tests read it between batches of requests (the harness's
 * gateway_worker_allocated).  nginx gives its workers an environment
 * of its own, so the directory is read when the master starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int dlclose(void *handle);

/* the AddressSanitizer runtime's, preloaded before this library */
size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static char  allocated_dir[512];


int
dlclose(void *handle)
{
    (void) handle;

    return 0;
}


/* n in decimal at p (no more than 20 digits): its length */
static size_t
allocated_digits(char *p, unsigned long long n)
{
    char    tmp[24];
    size_t  len = 0, i;

    do {
        tmp[len++] = (char) ('0' + n % 10);
        n /= 10;
    } while (n != 0);

    for (i = 0; i < len; i++) {
        p[i] = tmp[len - 1 - i];
    }

    return len;
}


/* SIGRTMIN+1: only what a signal handler may call (open, write, rename) */
static void
allocated_write(int signo)
{
    int     fd, saved = errno;
    char    path[600], tmp[610], line[32];
    size_t  dl, n;

    (void) signo;
    dl = strlen(allocated_dir);
    memcpy(path, allocated_dir, dl);
    memcpy(path + dl, "/allocated.", 11);
    n = dl + 11;
    n += allocated_digits(path + n, (unsigned long long) getpid());
    path[n] = '\0';
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);

    n = allocated_digits(line, __sanitizer_get_current_allocated_bytes());
    line[n++] = '\n';

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd != -1) {
        if (write(fd, line, n) == (ssize_t) n) {
            close(fd);
            rename(tmp, path);
        } else {
            close(fd);
        }
    }

    errno = saved;
}


__attribute__((constructor))
static void
allocated_init(void)
{
    const char        *dir = getenv("NGX_ASAN_ALLOCATED");
    struct sigaction   sa;

    if (dir == NULL || __sanitizer_get_current_allocated_bytes == NULL
        || strlen(dir) >= sizeof(allocated_dir))
    {
        return;
    }

    strcpy(allocated_dir, dir);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = allocated_write;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGRTMIN + 1, &sa, NULL);
}
