#!/usr/bin/env bash
# The SQL's layout rules, on a throwaway PostgreSQL (CONTRIBUTING.md, "SQL"):
#
#   1. sql/schema.sql is what a fresh payments-migrate makes (pg_dump
#      --schema-only); `ci/sql-check.sh --write` writes it anew.
#   2. The fold: the migrations that replace the history (the baseline and
#      the function-free files after it, up to the last one of $fold_ref)
#      make what $fold_ref's migrations made, but for the functions, their
#      triggers and the CHECKs that call them (sorted pg_dump, both sides
#      without those).
#   3. Upgrades: a database migrated by an earlier layout, then by
#      payments-migrate, has exactly a fresh migrate's schema, and a second
#      run has nothing to do and nothing to warn about.  Two earlier
#      layouts: $flat_ref's (sql/NNN_*.sql, every file creating its
#      functions, recorded by checksum) and $fold_ref's (migrations 001 to
#      its last, function files in schema_functions), each migrated by its
#      own files and payments-migrate.
#   4. Every function in the database has its file sql/functions/<name>.sql,
#      every such file names a function that exists, a file defines only
#      functions of its own name, and every trigger, and every CHECK that
#      calls a function, is made in that function's file; of the overloads
#      of one name the gateway may call, all but one are wrappers (one SQL
#      statement calling the current signature), never a second body.
#   5. No versioned migration creates a function: functions live in
#      sql/functions/ only.
#   6. No function can be executed by PUBLIC (each file revokes it).
#   7. No SECURITY DEFINER function is LANGUAGE sql but a kept signature's
#      wrapper (an overload of a name that has one with more arguments):
#      such a function is never inlined, so its body is parsed and planned
#      at every call; PL/pgSQL keeps its plans for the connection.
#   8. Every SECURITY DEFINER function sets its search_path: it runs with
#      its owner's rights, and a caller's path must not choose the tables,
#      functions or operators it names (a function that may go without a
#      SET, CONTRIBUTING.md "SQL", runs with its caller's rights).
#   (4, 6, 7 and 8 leave an extension's functions out: not ours to write.)
#   9. A migration after 106 that adds an enum value adds enum values only:
#      payments-migrate commits it before the rest of the upgrade.
#  10. Two indexes of one table on the same keys hold no row in common:
#      their predicates refute each other (as the planner proves it, with
#      constraint_exclusion on).  Else a statement whose conditions imply
#      both may be planned on either, as the statistics of the moment say,
#      and read the other's rows through its filter.
#  11. A function file makes its (plain) triggers by trigger_ensure, which
#      makes one only when missing or other than written: no CREATE
#      TRIGGER statement of its own, no CREATE OR REPLACE TRIGGER.
#  12. Partial indexes of one table never share a predicate.
#  13. A function that turns a scan type off (SET enable_seqscan TO 'off',
#      say) turns JIT off too (SET jit TO 'off').
#  14. A function that turns a scan type off calls no PL/pgSQL function of
#      ours that runs with it on elsewhere, unless that one turns it off
#      too: a connection keeps a function's plans from its first calls.
#      Nor does it write a table whose trigger runs such a function.
#
# Checks 2 and 3 read the earlier layouts from git: run it in a clone.
# Prints "sql: N passed, N failed"; exit 1 when any failed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# psql itself first on PATH (ci/pg-bin.sh says why)
. "$top/ci/pg-bin.sh"
# the last commit of the flat layout, and the last before the fold: fixed
# points of history, they stay as later migrations are added
flat_ref=3e398ee
fold_ref=cc3e8de

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
db() { echo "${ci/dbname=payments/dbname=$1}"; }
newdb() { q "$other" -c "CREATE DATABASE $1" >/dev/null; }

# a schema dump that depends on neither the server's minor version nor the
# dump's random \restrict key
dump() {
    pg_dump --schema-only --no-owner "$(db "$1")" |
        grep -v -e '^-- Dumped from' -e '^-- Dumped by' -e '^\\restrict' -e '^\\unrestrict'
}
# the same without functions, triggers and the CHECKs that call a function,
# its lines sorted, with no trailing comma (a CHECK left out of a CREATE
# TABLE moves the comma)
dump_tables() {
    dump "$1" | awk '
        /^-- Name: / { skip = ($0 ~ /Type: (FUNCTION|TRIGGER);/ ||
                               $0 ~ /^-- Name: FUNCTION .*Type: (ACL|COMMENT);/) }
        !skip' |
        grep -v -E '^    CONSTRAINT [a-z0-9_]+ CHECK \(public\.[a-z0-9_]+\(' |
        sed -e 's/,$//' | grep -v -e '^--' -e '^SET ' -e '^$' | LC_ALL=C sort
}
# REV's files under sql/ (and bin/payments-migrate) into DIR
checkout() {
    mkdir -p "$2"
    git -C "$top" archive "$1" sql bin/payments-migrate | tar -x -C "$2"
}

passed=0 failed=0
ok() { echo "sql: ok: $*"; passed=$((passed + 1)); }
bad() { echo "sql: FAILED: $*"; failed=$((failed + 1)); }
# a check that could not run, a failure all the same: the count of checks
# is the same whatever went wrong first (18)
notrun() { bad "$* (not run: the step before it failed)"; }

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

history=1 absent=""
for rev in "$flat_ref" "$fold_ref"; do
    git -C "$top" cat-file -e "$rev^{commit}" 2>/dev/null || { absent+="$rev "; history=0; }
done
if [ "$history" = 0 ]; then
    bad "no commit ${absent% } here: checks 2 and 3 read the earlier layouts from git (run it in a clone)"
    for rev in "$flat_ref" "$fold_ref"; do
        notrun "a database of $rev's layout upgrades to the fresh schema"
        notrun "a database of $rev's layout, upgraded, is current at the second run"
    done
fi

# a database named $1 that $2 (a directory with bin/ and sql/) migrated
old_migrate() {
    newdb "$1"
    PAYMENTS_SQL_DIR="$2/sql" "$2/bin/payments-migrate" "$(db "$1")" >"$run/$1.old.log" 2>&1 ||
        { cat "$run/$1.old.log"; return 1; }
}

# 2. the fold: migrations only, on both sides
if [ "$history" = 1 ]; then
    checkout "$fold_ref" "$run/fold_ref"
    last=$(ls "$run/fold_ref/sql/migrations" | LC_ALL=C sort | tail -1) && last=${last%%_*}
    mkdir -p "$run/folded/sql/migrations" "$run/folded/sql/functions" "$run/folded/bin"
    cp "$top/bin/payments-migrate" "$run/folded/bin/"
    cp "$top/sql/migrations/history.txt" "$run/folded/sql/migrations/" 2>/dev/null || true
    for f in "$top"/sql/migrations/*.sql; do
        name=${f##*/}
        [[ ! "${name%%_*}" > "$last" ]] && cp "$f" "$run/folded/sql/migrations/"
    done
    mkdir -p "$run/history/bin" "$run/history/sql/functions"
    cp -r "$run/fold_ref/sql/migrations" "$run/history/sql/"
    cp "$run/fold_ref/bin/payments-migrate" "$run/history/bin/"
    if old_migrate hist_tables "$run/history" && old_migrate fold_tables "$run/folded"; then
        if diff -u <(dump_tables hist_tables) <(dump_tables fold_tables) >"$run/fold.diff"; then
            ok "the migrations up to $last make what $fold_ref's did, but for functions, triggers and their CHECKs"
        else
            head -60 "$run/fold.diff"
            bad "the migrations up to $last make other tables than $fold_ref's (- theirs, + ours)"
        fi
    else
        bad "the migrations up to $last do not apply alone (functions only, or $fold_ref's)"
    fi
fi

# 3. upgrades from the earlier layouts
upgrade() {   # DATABASE WHAT
    local out
    if ! out=$(PAYMENTS_SQL_DIR="$top/sql" "$top/bin/payments-migrate" "$(db "$1")" 2>&1); then
        echo "$out"
        bad "payments-migrate failed on a database of $2"
        notrun "a database of $2, upgraded, is current at the second run"
        return
    fi
    dump "$1" >"$run/$1.sql"
    if diff -u "$run/fresh.sql" "$run/$1.sql" >"$run/$1.diff"; then
        ok "a database of $2 upgrades to the fresh schema ($(grep -c ': applied$' <<<"$out") migrations, $(tail -1 <<<"$out" | sed 's/^payments-migrate: //'))"
    else
        head -60 "$run/$1.diff"
        bad "a database of $2, upgraded, differs from a fresh one"
        notrun "a database of $2, upgraded, is current at the second run"
        return
    fi
    out=$(PAYMENTS_SQL_DIR="$top/sql" "$top/bin/payments-migrate" "$(db "$1")" 2>&1) || true
    if grep -q ' 0 applied, ' <<<"$out" && grep -q ' 0 function files applied' <<<"$out" &&
       ! grep -q -i 'warning' <<<"$out"; then
        ok "a database of $2, upgraded, is current (nothing applied, nothing warned)"
    else
        echo "$out"
        bad "a database of $2, upgraded, is not current at the second run"
    fi
}
if [ "$history" = 1 ]; then
    # $flat_ref's tool applied sql/NNN_*.sql in order, each recorded in
    # schema_migrations with its checksum, and nothing else
    checkout "$flat_ref" "$run/flat"
    if old_migrate flat "$run/flat"; then
        upgrade flat "$flat_ref's layout"
    else
        bad "$flat_ref's migrations do not apply"
        notrun "a database of $flat_ref's layout, upgraded, is current at the second run"
    fi
    if old_migrate folding "$run/fold_ref"; then
        upgrade folding "$fold_ref's layout"
    else
        bad "$fold_ref's migrations do not apply"
        notrun "a database of $fold_ref's layout, upgraded, is current at the second run"
    fi
fi

# 4. one file per function
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
# (one awk over every file: a few processes a file took ~10 s of the run)
strays=$(awk '
    FNR == 1 { own = FILENAME; sub(/.*\//, "", own); sub(/\.sql$/, "", own) }
    {
        l = tolower($0)
        while (match(l, /create[[:space:]]+(or[[:space:]]+replace[[:space:]]+)?function[[:space:]]+[a-z0-9_.]+/)) {
            n = split(substr(l, RSTART, RLENGTH), w, /[[:space:]]+/)
            l = substr(l, RSTART + RLENGTH)
            name = w[n]
            sub(/^public\./, "", name)
            if (name != own) printf "%s.sql defines %s; ", own, name
        }
    }' "$top"/sql/functions/*.sql)
[ -z "$strays" ] && ok "each function file defines its own function only" \
    || bad "$strays"

# a trigger, and a CHECK that calls a function, is made in its function's file
misplaced=""
while read -r what name fn; do
    [ -n "$what" ] || continue
    # (made: a DROP TRIGGER of the name, or a comment naming it, is not)
    if [ "$what" = trigger ]; then
        pat="CREATE[[:space:]]+(OR[[:space:]]+REPLACE[[:space:]]+)?(CONSTRAINT[[:space:]]+)?TRIGGER[[:space:]]+$name([[:space:]]|\$)"
    else
        pat="ADD[[:space:]]+CONSTRAINT[[:space:]]+$name([[:space:]]|\$)"
    fi
    sed 's/--.*$//' "$top/sql/functions/$fn.sql" 2>/dev/null | grep -qE "$pat" ||
        misplaced+="$what $name (in $fn.sql); "
done < <(q "$ci" -F ' ' -c "
    SELECT 'trigger', t.tgname, p.proname FROM pg_trigger t
      JOIN pg_proc p ON p.oid = t.tgfoid
      JOIN pg_class c ON c.oid = t.tgrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT t.tgisinternal AND n.nspname = 'public'
    UNION ALL
    SELECT DISTINCT 'check', c.conname, p.proname FROM pg_constraint c
      JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass AND d.objid = c.oid
                      AND d.refclassid = 'pg_proc'::regclass
      JOIN pg_proc p ON p.oid = d.refobjid
      JOIN pg_namespace n ON n.oid = c.connamespace
     WHERE c.contype = 'c' AND n.nspname = 'public'
     ORDER BY 1, 2")
[ -z "$misplaced" ] && ok "every trigger and every CHECK calling a function is made in that function's file" \
    || bad "made elsewhere than their function's file: $misplaced"

# a signature kept for the previous release's workers (every overload the
# gateway may call but one) is a wrapper: one SQL statement calling the
# current signature, never a second body
twice=$(q "$ci" -c "SELECT string_agg(proname, ' ') FROM (
    SELECT p.proname FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace
      JOIN pg_language l ON l.oid = p.prolang
     WHERE n.nspname = 'public'
       AND has_function_privilege('payments_gateway', p.oid, 'EXECUTE')
     GROUP BY p.proname
    HAVING count(*) FILTER (WHERE NOT (l.lanname = 'sql'
               AND p.prosrc ~ ('^\\s*SELECT\\s.*\\m' || p.proname || '\\s*\\(')
               AND p.prosrc !~ ';\\s*\\S')) > 1) t")
[ -z "$twice" ] && ok "every kept signature is a wrapper of the current one" \
    || bad "functions with more than one body the gateway may call (make the old signatures one-statement wrappers): $twice"

# 5. no CREATE FUNCTION in any migration (comments aside)
late=""
for f in "$top"/sql/migrations/*.sql; do
    sed 's/--.*$//' "$f" | grep -qiE 'CREATE[[:space:]]+(OR[[:space:]]+REPLACE[[:space:]]+)?FUNCTION' &&
        late+="${f##*/} "
done
[ -z "$late" ] && ok "no migration creates a function" \
    || bad "migrations that create functions (put them in sql/functions/): $late"

# 6. PUBLIC executes nothing
open=$(q "$ci" -c "SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_depend d
          WHERE d.objid = p.oid AND d.deptype = 'e')
     AND has_function_privilege('public', p.oid, 'EXECUTE')")
[ -z "$open" ] && ok "no function is executable by PUBLIC" \
    || bad "functions PUBLIC may execute (REVOKE ALL ... FROM PUBLIC in their file): $open"

# 7. SECURITY DEFINER bodies are PL/pgSQL, but the kept signatures' wrappers
planned=$(q "$ci" -c "SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid::regprocedure::text)
    FROM pg_proc p
   WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
     AND p.prolang = (SELECT l.oid FROM pg_language l WHERE l.lanname = 'sql')
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
     AND NOT EXISTS (SELECT 1 FROM pg_proc o
                      WHERE o.pronamespace = p.pronamespace AND o.proname = p.proname
                        AND o.pronargs > p.pronargs)")
[ -z "$planned" ] && ok "every SECURITY DEFINER function but a kept signature's wrapper is PL/pgSQL" \
    || bad "SECURITY DEFINER functions in LANGUAGE sql, parsed and planned at every call (make them LANGUAGE plpgsql): $planned"

# 8. SECURITY DEFINER functions set their search_path
unset_path=$(q "$ci" -c "SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid::regprocedure::text)
    FROM pg_proc p
   WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
     AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) g WHERE g LIKE 'search_path=%')")
[ -z "$unset_path" ] && ok "every SECURITY DEFINER function sets its search_path" \
    || bad "SECURITY DEFINER functions without SET search_path TO 'public', 'pg_temp': $unset_path"

# 9. a migration that adds an enum value adds enum values only: it commits
# before the rest of the upgrade (bin/payments-migrate), so anything else in
# it, a trigger dropped for its function file to make anew say, would be
# seen by the workers without the functions it was written with.  The
# migrations up to 106 are history (054, 055, 056 and 074 also do more).
mixed=""
for f in "$top"/sql/migrations/*.sql; do
    name=${f##*/}
    [ "$((10#${name%%_*}))" -gt 106 ] || continue
    grep -Eizq 'ALTER[[:space:]]+TYPE[^;]+ADD[[:space:]]+VALUE' "$f" || continue
    # the file's statements, comments out (a "--" inside a quoted value
    # is no comment: what follows it on the line is read), one a line
    other=$(awk '{
                out = ""
                for (i = 1; i <= length($0); i++) {
                    c = substr($0, i, 1)
                    if (!quoted && c == "-" && substr($0, i + 1, 1) == "-") break
                    if (c == "\047") quoted = !quoted
                    out = out c
                }
                print out
            }' "$f" | tr '\n' ' ' | tr ';' '\n' |
            grep -Eiv '^[[:space:]]*(ALTER[[:space:]]+TYPE[^;]+ADD[[:space:]]+VALUE[^;]*)?[[:space:]]*$' || true)
    [ -z "$other" ] || mixed+="$name "
done
[ -z "$mixed" ] && ok "a migration that adds an enum value does nothing else" \
    || bad "migrations that add an enum value and do more (it commits before the rest of the upgrade: put the values in a migration of their own): $mixed"

# 10. indexes on the same keys hold no row in common: for each pair, the
# conjunction of their predicates is planned as false (a pair without a
# predicate on one side always shares its rows)
overlap=""
while IFS=$'\t' read -r tbl ia ib pa pb; do
    [ -n "$tbl" ] || continue
    plan=""
    if [ -n "$pa" ] && [ -n "$pb" ]; then
        plan=$(q "$ci" -c "SET constraint_exclusion = on" \
                       -c "EXPLAIN (COSTS OFF) SELECT 1 FROM $tbl WHERE ($pa) AND ($pb)" | tr '\n' ' ') || true
    fi
    case "$plan" in
        "SET Result   One-Time Filter: false "*) ;;
        *) overlap+="$tbl: $ia and $ib; " ;;
    esac
done < <(q "$ci" -F $'\t' -c "SELECT a.indrelid::regclass, a.indexrelid::regclass, b.indexrelid::regclass,
           coalesce(pg_get_expr(a.indpred, a.indrelid), ''), coalesce(pg_get_expr(b.indpred, b.indrelid), '')
      FROM pg_index a
      JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid > a.indexrelid
       AND b.indkey::text = a.indkey::text AND b.indclass::text = a.indclass::text
       AND b.indcollation::text = a.indcollation::text
       AND coalesce(pg_get_expr(b.indexprs, b.indrelid), '') = coalesce(pg_get_expr(a.indexprs, a.indrelid), '')
      JOIN pg_class t ON t.oid = a.indrelid
     WHERE t.relnamespace = 'public'::regnamespace
     ORDER BY 1, 2, 3")
[ -z "$overlap" ] && ok "indexes on the same keys hold no row in common" \
    || bad "indexes on the same keys whose predicates do not refute each other (a statement may be planned on either, by the statistics of the moment: make them disjoint, or drop one): $overlap"

# 11. a function file makes its triggers by trigger_ensure (its definitions
# as strings, 'CREATE TRIGGER name ...'), which makes each only when
# missing or other than written: a CREATE TRIGGER statement of its own, or
# any CREATE OR REPLACE TRIGGER (a copy of trigger_ensure's loop, say), is
# made again, or fails, at every apply, and CREATE OR REPLACE TRIGGER locks
# the table against every write until the upgrade commits.  A constraint
# trigger, which cannot be replaced, is made by CREATE CONSTRAINT TRIGGER
# when absent.  Comments aside.
# (one awk over every file, as check 4's)
bypass=$(awk -v q="'" '
    function judge() {
        if (file != "trigger_ensure.sql" && (own_stmt || (quoted && !ensured)))
            printf "%s ", file
    }
    FNR == 1 {
        if (file != "") judge()
        file = FILENAME; sub(/.*\//, "", file)
        own_stmt = quoted = ensured = 0
    }
    {
        l = tolower($0)
        sub(/--.*$/, "", l)
        if (l ~ /create[[:space:]]+or[[:space:]]+replace[[:space:]]+trigger/ ||
            l ~ ("(^|[^" q "[:alnum:]_])create[[:space:]]+trigger")) own_stmt = 1
        if (index(l, q "create trigger")) quoted = 1
        if (l ~ /trigger_ensure[[:space:]]*\(/) ensured = 1
    }
    END { if (file != "") judge() }' "$top"/sql/functions/*.sql)
[ -z "$bypass" ] && ok "every function file makes its triggers by trigger_ensure" \
    || bad "function files that make a trigger without trigger_ensure (SELECT trigger_ensure('CREATE TRIGGER ...'): it makes one only when missing or other than written, sql/functions/trigger_ensure.sql): $bypass"

# 12. partial indexes of one table never share a predicate: a statement
# that says it may be planned on either, whatever their keys, and one not
# on its keys reads every row of the predicate through it (a filter, not a
# look-up).  After an ANALYZE that saw no such row both look as cheap:
# the notifier's claim read every PENDING row once per endpoint through
# the gauges' index of PENDING rows by age (migration 134)
shared=$(q "$ci" -c "SELECT string_agg(a.indrelid::regclass || ': ' || a.indexrelid::regclass
                                   || ' and ' || b.indexrelid::regclass, '; '
                                   ORDER BY a.indrelid::regclass::text, a.indexrelid::regclass::text)
      FROM pg_index a
      JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid > a.indexrelid
       AND pg_get_expr(b.indpred, b.indrelid) = pg_get_expr(a.indpred, a.indrelid)
      JOIN pg_class t ON t.oid = a.indrelid
     WHERE t.relnamespace = 'public'::regnamespace")
[ -z "$shared" ] && ok "partial indexes of one table never share a predicate" \
    || bad "partial indexes of one table with the same predicate (a statement that says it may be planned on either, through a filter of every row of it: make each predicate its own): $shared"

# 13. a function that turns a scan type off turns JIT off too: where one of
# its statements has no other plan for a node (a table without an index on
# the condition), the planner keeps the disabled scan at a cost of 1e10
# (disable_cost), far above jit_above_cost, and every call compiles its
# plan with LLVM.  pay_notify_stats, which every gateway calls every one
# to ten seconds, cost 0.2 to 1.2 s of database CPU a call that way
# (test sql::the_gauges_of_metrics_compile_no_jit_code).  An extension's
# functions are left out.
jit_on=$(q "$ci" -c "SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid::regprocedure::text)
    FROM pg_proc p
   WHERE p.pronamespace = 'public'::regnamespace
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
     AND EXISTS (SELECT 1 FROM unnest(p.proconfig) g WHERE g ~ '^enable_[a-z]+=off$')
     AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) g WHERE g = 'jit=off')")
[ -z "$jit_on" ] && ok "every function that turns a scan type off turns JIT off" \
    || bad "functions that turn a scan type off but not JIT (a node left with no other plan costs 1e10 and every call compiles it: add SET jit TO 'off'): $jit_on"

# 14. a function that turns a scan type off calls no function of ours in
# PL/pgSQL that runs with that scan type on elsewhere (another function
# calls it, or the gateway may call it itself), unless the callee turns it
# off too: a connection keeps a PL/pgSQL function's plans from its first
# calls, made under that call's settings, and its other callers then run
# plans made with the scan off, or the other way round.  pay_inbox_retry
# turned them off for the pay_event_apply it calls, which every webhook
# runs on the same pool's connections.  A call is the callee's name and
# "(" in the caller's body.  A trigger's function counts as called by
# every function whose body writes the trigger's table with a statement
# of the trigger's events (INSERT INTO, UPDATE or DELETE FROM it; for an
# UPDATE OF trigger, one of its columns assigned, "col =", unqualified,
# anywhere in the body), and as run elsewhere by every other such writer.
# The functions payments-reconcile
# runs (recon_*) are left out: what they plan stays on its own
# connection.  An extension's functions are left out.
shared_plans=$(q "$ci" <<'SQL'
WITH fn AS (
  SELECT p.oid, p.proname::text AS name, p.prosrc, l.lanname,
         ARRAY(SELECT g FROM unnest(p.proconfig) g WHERE g ~ '^enable_[a-z]+=off$' ORDER BY 1) AS offs,
         has_function_privilege('payments_gateway', p.oid, 'EXECUTE') AS gw
    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
   WHERE p.pronamespace = 'public'::regnamespace
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')),
calls AS (
  SELECT a.name AS caller, a.offs AS caller_offs, b.oid AS callee_oid, b.name AS callee,
         b.offs AS callee_offs, b.gw
    FROM fn a JOIN fn b ON b.oid <> a.oid AND b.lanname = 'plpgsql'
     AND a.name !~ '^recon_'
     AND a.prosrc ~ ('\m' || b.name || '\s*\(')),
fires AS (
  -- a write of a table (the statement's kind matching the trigger's
  -- events; an UPDATE OF trigger's column assigned, unqualified, in the
  -- writer's body) fires its trigger's function
  SELECT a.name AS caller, a.offs AS caller_offs, b.oid AS callee_oid,
         b.name AS callee, b.offs AS callee_offs, t.tgname::text AS trg,
         r.relname::text AS tbl, a.prosrc
    FROM fn a
    JOIN pg_class r ON r.relnamespace = 'public'::regnamespace AND r.relkind IN ('r', 'p')
    JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
    JOIN fn b ON b.oid = t.tgfoid AND b.lanname = 'plpgsql'
   WHERE a.name !~ '^recon_'
     AND ((t.tgtype & 4 <> 0
           AND a.prosrc ~* ('\minsert\s+into\s+(public\.)?' || r.relname || '\M'))
          OR (t.tgtype & 8 <> 0
              AND a.prosrc ~* ('\mdelete\s+from\s+(only\s+)?(public\.)?' || r.relname || '\M'))
          OR (t.tgtype & 16 <> 0
              AND a.prosrc ~* ('\mupdate\s+(only\s+)?(public\.)?' || r.relname || '\M')
              AND (cardinality(t.tgattr::int2[]) = 0
                   OR EXISTS (SELECT 1 FROM pg_attribute c
                               WHERE c.attrelid = r.oid AND c.attnum = ANY (t.tgattr::int2[])
                                 AND a.prosrc ~* ('(^|[^.a-z0-9_])' || c.attname || '\s*=[^=>]'))))))
SELECT concat_ws(', ',
  (SELECT string_agg(DISTINCT c.caller || ' calls ' || c.callee, ', ')
     FROM calls c
    WHERE cardinality(c.caller_offs) > 0
      AND NOT (c.callee_offs @> c.caller_offs)
      AND (c.gw OR EXISTS (SELECT 1 FROM calls o
                            WHERE o.callee_oid = c.callee_oid AND o.caller <> c.caller
                              AND NOT (o.caller_offs @> c.caller_offs)))),
  (SELECT string_agg(DISTINCT f.caller || ' fires ' || f.callee || ' (trigger '
                     || f.trg || ' on ' || f.tbl || ')', ', ')
     FROM fires f
    WHERE cardinality(f.caller_offs) > 0
      AND NOT (f.callee_offs @> f.caller_offs)
      -- written elsewhere with the scan on
      AND EXISTS (SELECT 1 FROM fires o
                   WHERE o.callee_oid = f.callee_oid AND o.caller <> f.caller
                     AND NOT (o.caller_offs @> f.caller_offs))))
SQL
)
[ -z "$shared_plans" ] && ok "no function that turns a scan type off calls one that runs with it on elsewhere" \
    || bad "functions that turn a scan type off and call one that runs with it on elsewhere (the callee's plans depend on which call came first on a connection: turn the scan off in the callee too, or move the setting onto a function of the caller's own): $shared_plans"

echo "sql: $passed passed, $failed failed"
[ "$failed" = 0 ]
