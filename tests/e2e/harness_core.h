/*
 * The e2e harness's core: the environment, strings and ids, processes,
 * files.
 */
#ifndef E2E_HARNESS_CORE_H
#define E2E_HARNESS_CORE_H

#include <stddef.h>


/* -- environment and strings ---------------------------------------------- */

/* The variable's value; fails the test when it is unset or empty. */
const char *env(const char *name);

/* printf into a fresh string. */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether haystack (len bytes, not NUL-terminated) contains needle. */
int mem_contains(const char *haystack, size_t len, const char *needle);

/*
 * A fresh id: prefix "_" pid "_" counter "_" clock, the numbers in fixed
 * width so that no id is a substring of another (mock fault rules match by
 * substring).  At most 32 characters for a prefix of at most 6.
 */
char *uid(const char *prefix);

void msleep(long ms);

/* "[WARN] " and the message on stderr: a note the run shows, not a
 * failure.  Not Criterion's cr_log_warn: after a test that logged with it,
 * Criterion 2.4.1's runner exits 1 though every test passed, and
 * ci/e2e.sh counts that as a failure. */
void e2e_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* a monotonic clock, in ms */
long ms_now(void);


/* -- processes --------------------------------------------------------------- */

/*
 * Runs argv (no shell), stdin from /dev/null; its stdout and stderr are
 * returned when out is not NULL (else inherited).  Returns the exit
 * status, or -1.
 */
int      run(char *const argv[], char **out);


/* -- files ------------------------------------------------------------------- */

/* PAY_TEST_RUN "/" rel */
char    *run_file(const char *rel);

/* A file the build made: $BUILD (default "build", under PAY_TEST_ROOT unless
 * absolute) "/" rel, e.g. "payments-secrets". */
char    *build_file(const char *rel);

/* The whole file, NUL-terminated, or NULL if it cannot be read. */
char    *file_read(const char *path, size_t *len);

/* 1 if the file contains needle (0 if absent or unreadable). */
int      file_contains(const char *path, const char *needle);


#endif
