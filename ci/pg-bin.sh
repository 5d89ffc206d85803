# Sourced by the scripts that run psql many times (ci/e2e.sh,
# ci/sql-check.sh): the client itself first on PATH, not Debian's
# pg_wrapper (a Perl script that finds it, and costs a fifth of a
# payments-merchant call's CPU).  Each call names its server (a
# conninfo), which the wrapper's choice of cluster never changes.
if [ -x /usr/lib/postgresql/15/bin/psql ]; then
    export PATH="/usr/lib/postgresql/15/bin:$PATH"
fi
