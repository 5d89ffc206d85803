#!/usr/bin/env bash
# The SQL's layout rules, on a throwaway PostgreSQL (CONTRIBUTING.md, "SQL"):
#
#   1. sql/schema.sql is what a fresh payments-migrate makes (pg_dump
#      --schema-only); `ci/sql-check.sh --write` writes it anew.
#   2. A database migrated by the previous layout (every versioned migration
#      of baseline 001..044 applied and recorded, with the functions they
#      defined) is brought by payments-migrate to exactly the same schema.
#   3. Every function in the database has its file sql/functions/<name>.sql,
#      every such file names a function that exists, and a file defines
#      only functions of its own name.
#   4. No versioned migration after the baseline (044) creates a function:
#      functions live in sql/functions/ only.
#   5. No function can be executed by PUBLIC (each file revokes it).
#
# Prints "sql: N passed, N failed"; exit 1 when any failed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
baseline_last=044

write=0
[ "${1:-}" = --write ] && write=1

run=$(mktemp -d "${TMPDIR:-/tmp}/ngx-payments-sql.XXXXXX")
chmod 755 "$run"
pg="$run/pg"
cleanup() { bash "$top/ci/pg.sh" stop "$pg" >/dev/null 2>&1 || true; rm -rf "$run"; }
trap cleanup EXIT

port=$(bash "$top/ci/services.sh" port)
ci=$(bash "$top/ci/pg.sh" start "$pg" "$port")
other=${ci/dbname=payments/dbname=postgres}
q() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }

# a schema dump that depends on neither the server's minor version nor the
# dump's random \restrict key
dump() {
    pg_dump --schema-only --no-owner "${ci/dbname=payments/dbname=$1}" |
        grep -v -e '^-- Dumped from' -e '^-- Dumped by' -e '^\\restrict' -e '^\\unrestrict'
}

passed=0 failed=0
ok() { echo "sql: ok: $*"; passed=$((passed + 1)); }
bad() { echo "sql: FAILED: $*"; failed=$((failed + 1)); }

# 1. schema.sql
dump payments >"$run/fresh.sql"
if [ "$write" = 1 ]; then
    cp "$run/fresh.sql" "$top/sql/schema.sql"
    echo "sql: wrote sql/schema.sql"
fi
if diff -u "$top/sql/schema.sql" "$run/fresh.sql" >"$run/schema.diff"; then
    ok "sql/schema.sql is a fresh migrate's schema"
else
    head -60 "$run/schema.diff"
    bad "sql/schema.sql differs from a fresh migrate (ci/sql-check.sh --write, and read the diff)"
fi

# 2. the upgrade from the previous layout: its tool applied sql/NNN_*.sql in
# order, each recorded in schema_migrations with its checksum, and nothing else
q "$other" -c "CREATE DATABASE upgraded" >/dev/null
up=${ci/dbname=payments/dbname=upgraded}
q "$up" -c "CREATE TABLE schema_migrations (version text PRIMARY KEY,
    checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())" >/dev/null
for f in "$top"/sql/migrations/*.sql; do
    name=${f##*/}
    [ "${name%%_*}" -le "$baseline_last" ] || continue
    sum=$(sha256sum <"$f") && sum=${sum%% *}
    (cd "$top/sql/migrations" && PGOPTIONS="-c client_min_messages=warning" q "$up" -1 -q -o /dev/null -f "$name" \
        -c "INSERT INTO schema_migrations VALUES ('$name', '$sum')") \
        || { bad "the previous layout's $name does not apply"; break; }
done
if out=$(PAYMENTS_SQL_DIR="$top/sql" "$top/bin/payments-migrate" "$up" 2>&1); then
    dump upgraded >"$run/upgraded.sql"
    if diff -u "$run/fresh.sql" "$run/upgraded.sql" >"$run/upgrade.diff"; then
        ok "a database of the previous layout upgrades to the fresh schema ($(tail -1 <<<"$out" | sed 's/^payments-migrate: //'))"
    else
        head -60 "$run/upgrade.diff"
        bad "the upgraded schema differs from a fresh one"
    fi
else
    echo "$out"
    bad "payments-migrate failed on a database of the previous layout"
fi

# 3. one file per function
q "$ci" -c "SELECT DISTINCT p.proname FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_depend d
          WHERE d.objid = p.oid AND d.deptype = 'e')
   ORDER BY 1" >"$run/in_db"
(cd "$top/sql/functions" && ls -- *.sql | sed 's/\.sql$//' | LC_ALL=C sort) >"$run/files"
LC_ALL=C sort -o "$run/in_db" "$run/in_db"
missing=$(comm -23 "$run/in_db" "$run/files" | tr '\n' ' ')
stale=$(comm -13 "$run/in_db" "$run/files" | tr '\n' ' ')
[ -z "$missing" ] && ok "every function has its file in sql/functions/" \
    || bad "functions without a file in sql/functions/: $missing"
[ -z "$stale" ] && ok "every file in sql/functions/ names a function" \
    || bad "files in sql/functions/ whose function the migrate did not make: $stale"
strays=""
for f in "$top"/sql/functions/*.sql; do
    own=${f##*/} && own=${own%.sql}
    while read -r name; do
        [ "$name" = "$own" ] || strays+="$own.sql defines $name; "
    done < <(grep -oiE 'CREATE[[:space:]]+(OR[[:space:]]+REPLACE[[:space:]]+)?FUNCTION[[:space:]]+[a-z0-9_.]+' "$f" |
             awk '{print $NF}' | sed 's/^public\.//' | tr 'A-Z' 'a-z')
done
[ -z "$strays" ] && ok "each function file defines its own function only" \
    || bad "$strays"

# 4. no CREATE FUNCTION in a migration after the baseline
late=""
for f in "$top"/sql/migrations/*.sql; do
    name=${f##*/}
    [ "${name%%_*}" -gt "$baseline_last" ] || continue
    grep -qiE 'CREATE[[:space:]]+(OR[[:space:]]+REPLACE[[:space:]]+)?FUNCTION' "$f" && late+="$name "
done
[ -z "$late" ] && ok "no migration after $baseline_last creates a function" \
    || bad "migrations that create functions (put them in sql/functions/): $late"

# 5. PUBLIC executes nothing
open=$(q "$ci" -c "SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_depend d
          WHERE d.objid = p.oid AND d.deptype = 'e')
     AND has_function_privilege('public', p.oid, 'EXECUTE')")
[ -z "$open" ] && ok "no function is executable by PUBLIC" \
    || bad "functions PUBLIC may execute (REVOKE ALL ... FROM PUBLIC in their file): $open"

echo "sql: $passed passed, $failed failed"
[ "$failed" = 0 ]
