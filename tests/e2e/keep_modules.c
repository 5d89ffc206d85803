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
 */
int dlclose(void *handle);

int
dlclose(void *handle)
{
    (void) handle;

    return 0;
}
