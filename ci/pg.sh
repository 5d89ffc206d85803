#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests, demos and benchmarks.
#
#   ci/pg.sh start  DIR PORT   initdb (first time), start, create database
#                              "payments", apply migrations, print the conninfo
#   ci/pg.sh stop   DIR        pg_ctl stop -m fast (no-op when not running)
#   ci/pg.sh status DIR        exit 0 when running
#   ci/pg.sh conninfo DIR      print the superuser conninfo
#   ci/pg.sh standby DIR PORT PRIMARY_DIR
#                              a streaming standby of the running cluster in
#                              PRIMARY_DIR (pg_basebackup -R), started; the
#                              primary then commits synchronously (it waits
#                              for the standby: nothing it answered is lost
#                              when it dies)
#   ci/pg.sh kill DIR          stop hard (pg_ctl stop -m immediate: no
#                              shutdown checkpoint, clients cut off)
#   ci/pg.sh promote DIR       the standby in DIR becomes the primary
#
# PG_PRELOAD: shared_preload_libraries for the cluster (bench/run.sh sets
# pg_stat_statements); read when settings are written, at every start.
# PG_SETTINGS: more settings, "name=value" words separated by spaces (e.g.
# "auto_explain.log_min_duration=20ms auto_explain.log_nested_statements=on"
# with PG_PRELOAD=auto_explain, to see the plans of slow statements in
# DIR/postgres.log).
# PAYMENTS_MIGRATE: the payments-migrate to run (default bin/payments-migrate
# of this tree; payments-testenv, installed, passes /usr/bin's).
# PG_DURABLE=1: fsync, synchronous_commit and full_page_writes on, as a
# production cluster must run (doc/OPERATIONS.md) and as the benchmark's
# database floor (bench/peer/db_floor) is measured (PG_DURABLE=1 make bench).
#
# Layout: DIR/data (PGDATA), DIR/postgres.log, the unix socket in DIR.
# DIR must be reachable by the postgres user (initdb refuses root): use a
# directory under /tmp, e.g. /tmp/ngx-payments-pg.XXXXXX.
#
# Settings are written to postgresql.conf (not pg_ctl -o), so a plain
# `pg_ctl -D DIR/data start` (as the tests do when they stop and restart the
# server) comes back on the same port and socket.
#
# Durability is traded for speed: fsync, synchronous_commit and
# full_page_writes are off (unless PG_DURABLE=1).  Acceptable for a cluster
# that is thrown away after the run; never do this with data you keep.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}

usage() {
    echo "usage: $0 start DIR PORT | stop DIR | status DIR | conninfo DIR |" \
         "standby DIR PORT PRIMARY_DIR | kill DIR | promote DIR" >&2
    exit 2
}

# Runs a command as the cluster's owner: postgres when we are root, from /
# (the caller's directory may be closed to postgres: a root-owned clone in
# /tmp, where PostgreSQL's tools warn that they cannot return to it).  Every
# path given is absolute.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

conninfo() {
    local port
    port=$(cat "$1/port")
    echo "host=127.0.0.1 port=$port dbname=payments user=postgres"
}

running() {
    [ -f "$1/data/PG_VERSION" ] && as_owner "$pgbin/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

# Our settings last: later lines win.  Rewritten on every start so a
# reused DIR may change port.
settings() {
    local dir=$1 port=$2 conf=$1/data/postgresql.conf
    sed -i '/^# ngx-payments test settings/,$d' "$conf"
    cat >>"$conf" <<EOF
# ngx-payments test settings (ci/pg.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
log_min_duration_statement = -1
# a failed statement's text and a constraint's failing row carry values
# (e-mails, tokens): not in the log (doc/OPERATIONS.md, "The database")
log_min_error_statement = panic
log_error_verbosity = terse
EOF
    if [ "${PG_DURABLE:-0}" = 1 ]; then
        printf '%s\n' "fsync = on" "synchronous_commit = on" "full_page_writes = on" >>"$conf"
    fi
    local kv
    for kv in ${PG_SETTINGS:-}; do
        case $kv in
            *=*) printf "%s = '%s'\n" "${kv%%=*}" "${kv#*=}" >>"$conf" ;;
            *) echo "ci/pg.sh: PG_SETTINGS: '$kv' is not name=value" >&2; exit 2 ;;
        esac
    done
    # PG_PRELOAD (e.g. pg_stat_statements, for make bench's profile)
    if [ -n "${PG_PRELOAD:-}" ]; then
        echo "shared_preload_libraries = '$PG_PRELOAD'" >>"$conf"
    fi
    chown postgres: "$conf" 2>/dev/null || true
}

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then usage; fi
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac

case $cmd in
start)
    port=${3:-}
    [[ $port =~ ^[0-9]+$ ]] || usage
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            echo "pg.sh: $dir is not reachable by the postgres user: use a directory under /tmp" >&2
            exit 1
        fi
    fi
    chmod 700 "$dir"
    echo "$port" >"$dir/port"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$pgbin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 \
            --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    settings "$dir" "$port"
    if ! running "$dir"; then
        as_owner "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null ||
            { tail -30 "$dir/postgres.log" >&2; exit 1; }
    fi
    ci=$(conninfo "$dir")
    if [ "$(psql "${ci/dbname=payments/dbname=postgres}" -XAtq -c \
            "SELECT 1 FROM pg_database WHERE datname = 'payments'")" != 1 ]; then
        psql "${ci/dbname=payments/dbname=postgres}" -Xq -v ON_ERROR_STOP=1 \
            -c 'CREATE DATABASE payments'
    fi
    migrate=${PAYMENTS_MIGRATE:-$top/bin/payments-migrate}
    if [ -x "$migrate" ]; then
        PGHOST=127.0.0.1 PGPORT=$port PGDATABASE=payments PGUSER=postgres \
            "$migrate" "$ci" >"$dir/migrate.log" 2>&1 ||
            { cat "$dir/migrate.log" >&2; exit 1; }
    else
        echo "pg.sh: $migrate is missing: database left empty" >&2
    fi
    echo "$ci"
    ;;
stop)
    if running "$dir"; then
        as_owner "$pgbin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
status)
    if running "$dir"; then
        echo "running: $(conninfo "$dir")"
    else
        echo "stopped"
        exit 3
    fi
    ;;
conninfo)
    conninfo "$dir"
    ;;
standby)
    port=${3:-}
    primary=${4:-}
    [[ $port =~ ^[0-9]+$ ]] && [ -n "$primary" ] || usage
    case $primary in /*) ;; *) primary=$PWD/$primary ;; esac
    running "$primary" || { echo "pg.sh: no primary running in $primary" >&2; exit 1; }
    mkdir -p "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
    chmod 700 "$dir"
    echo "$port" >"$dir/port"
    as_owner "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$(cat "$primary/port")" \
        -U postgres -D "$dir/data" -R -X stream -c fast --no-sync >"$dir/basebackup.log" 2>&1 ||
        { cat "$dir/basebackup.log" >&2; exit 1; }
    settings "$dir" "$port"
    as_owner "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null ||
        { tail -30 "$dir/postgres.log" >&2; exit 1; }
    # synchronous from now on: a commit the primary answered is on the
    # standby too
    psql "$(conninfo "$primary")" -Xq -v ON_ERROR_STOP=1 \
        -c "ALTER SYSTEM SET synchronous_standby_names = '*'" \
        -c "ALTER SYSTEM SET synchronous_commit = 'on'" \
        -c "SELECT pg_reload_conf()" >/dev/null
    echo "$(conninfo "$dir")"
    ;;
kill)
    if running "$dir"; then
        as_owner "$pgbin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null
    fi
    ;;
promote)
    as_owner "$pgbin/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null
    ;;
*)
    usage
    ;;
esac
