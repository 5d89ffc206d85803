#!/usr/bin/env bash
# ci/sql-check.sh against a planted tree: in a clone of the repository (the
# committed files, with the working tree's ci/sql-check.sh), the script
# passes on the tree as it is, then fails on the same tree with a violation
# of each of its rules planted, each reported by its own message; a
# migration that only adds enum values, a comment naming CREATE FUNCTION,
# a kept signature's LANGUAGE sql wrapper, an extension's function and
# two indexes on the same keys with disjoint predicates are not reported;
# and an applied migration edited leaves a database of an
# earlier layout not current at the second run.  Three runs of the script,
# ~60 s; two when SQL_CHECK_CLEAN_LOG holds the first's output (below).
# Prints
# "sqlcheck: N passed, N failed".
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sql-check-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
ok() { echo "sqlcheck: ok: $*"; passed=$((passed + 1)); }
bad() { echo "sqlcheck: FAILED: $*" >&2; failed=$((failed + 1)); }

# The history with it: checks 2 and 3 read the earlier layouts from git.
tree=$tmp/tree
git clone -q "$top" "$tree"
cp "$top/ci/sql-check.sh" "$tree/ci/sql-check.sh"

# check NAME: the tree's ci/sql-check.sh, its output in $tmp/NAME.out and
# its exit status in rc
runs=0
check() {
    rc=0
    runs=$((runs + 1))
    bash "$tree/ci/sql-check.sh" >"$tmp/$1.out" 2>&1 || rc=$?
}
# shows a run's output once, after the first case of it that failed
shown=""
show() {
    case " $shown " in *" $1 "*) return ;; esac
    shown+=" $1"
    echo "sqlcheck: the output of ci/sql-check.sh on the $1 tree:" >&2
    sed 's/^/    /' "$tmp/$1.out" >&2
}
# reported RUN CASE REGEX: a "sql: FAILED:" line of the run matches REGEX
reported() {
    if grep -qE "^sql: FAILED: .*$3" "$tmp/$1.out"; then
        ok "$2"
    else
        bad "$2: no line \"sql: FAILED: ...$3\""
        show "$1"
    fi
}
# spared RUN CASE REGEX: no "sql: FAILED:" line of the run matches REGEX
spared() {
    if ! grep -qE "^sql: FAILED: .*$3" "$tmp/$1.out"; then
        ok "$2"
    else
        bad "$2: a line \"sql: FAILED: ...$3\""
        show "$1"
    fi
}

start=$SECONDS

# --- the tree as committed: every check passes ---------------------------------
# SQL_CHECK_CLEAN_LOG: the output of a run of ci/sql-check.sh on this
# working tree (ci/test.sh's sql-layout step), taken as this run's when
# the working tree is the commit (nothing changed, nothing untracked): the
# clone would run the same script on the same files.
clean_log=${SQL_CHECK_CLEAN_LOG:-}
if [ -n "$clean_log" ] && [ -s "$clean_log" ] &&
   [ -z "$(git -C "$top" status --porcelain --untracked-files=normal)" ]; then
    # its "0 failed" line, looked for below, stands for its exit status
    cp "$clean_log" "$tmp/clean.out"
    rc=0
    echo "sqlcheck: the committed tree's run: $clean_log (the working tree is the commit)"
else
    check clean
fi
if [ "$rc" -eq 0 ] && grep -qE '^sql: [0-9]+ passed, 0 failed$' "$tmp/clean.out"; then
    ok "the committed tree passes (exit 0, 0 failed)"
else
    bad "the committed tree: expected exit 0 and \"0 failed\" (exit $rc)"
    show clean
fi

# --- the tree with a violation of each rule ------------------------------------
# None hides another: the migrations and function files below all apply
# (a fresh migrate must succeed for the script to check anything), each
# function is named after its case, and every case looks for its own name.
sql=$tree/sql
mig=$sql/migrations
fn=$sql/functions

# 1. sql/schema.sql edited (it also differs by everything planted below:
# the line must be in the diff the script prints, its first hunk)
mark='-- planted by ci/sql-check-test.sh'
{ echo "$mark"; cat "$sql/schema.sql"; } >"$tmp/schema.sql"
cp "$tmp/schema.sql" "$sql/schema.sql"

# 2. and 3. a migration numbered inside the fold (up to 052): the folded
# migrations make a table the history did not, and a database of the fold's
# layout, which recorded 052, refuses to run it after
cat >"$mig/042_zz_planted_fold.sql" <<'SQL'
CREATE TABLE zz_planted_fold (id int PRIMARY KEY);
SQL

# 3. a migration whose result depends on the database it runs on: a table
# only where functions exist while the migrations run, which is in a
# database of an earlier layout (a fresh migrate makes them after), so such
# a database, upgraded, differs from a fresh one
cat >"$mig/899_zz_planted_upgraded.sql" <<'SQL'
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                   WHERE d.objid = p.oid AND d.deptype = 'e')) THEN
        CREATE TABLE zz_planted_upgraded (id int PRIMARY KEY);
    END IF;
END
$$;
SQL

# 9. a migration after 106 that adds an enum value and makes a table (which
# the trigger and the CHECK below use); and one that adds values only,
# one over two lines, one holding "--", and with comments, which is fine
cat >"$mig/900_zz_planted_mixed.sql" <<'SQL'
ALTER TYPE pay_failure_code ADD VALUE 'zz_planted_a';
CREATE TABLE zz_planted (id int PRIMARY KEY);
SQL
cat >"$mig/901_zz_planted_values.sql" <<'SQL'
-- three values; nothing else (no CREATE FUNCTION: a comment is not rule 5's)
ALTER TYPE pay_failure_code ADD VALUE 'zz_planted_b';
ALTER TYPE pay_status
    ADD VALUE 'ZZ_PLANTED';
ALTER TYPE pay_failure_code ADD VALUE 'zz_planted--d'; -- a comment, after a string holding "--"
SQL
# and one whose second statement follows, on the same line, a value
# holding "--" (not a comment: the statement after it is read)
cat >"$mig/904_zz_planted_hidden.sql" <<'SQL'
ALTER TYPE pay_failure_code ADD VALUE 'zz_planted--c'; CREATE TABLE zz_planted_hidden (id int PRIMARY KEY);
SQL

# 5. a migration that creates a function (which then has no file either)
cat >"$mig/902_zz_planted_function.sql" <<'SQL'
CREATE FUNCTION zz_planted_in_migration() RETURNS int LANGUAGE sql AS 'SELECT 1';
REVOKE ALL ON FUNCTION zz_planted_in_migration() FROM PUBLIC;
SQL

# 4. a file that names no function
cat >"$fn/zz_planted_nofunc.sql" <<'SQL'
SELECT 1;
SQL
# 4. a file that defines another function besides its own (which has no
# file of its own)
cat >"$fn/zz_planted_two.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_two() RETURNS int LANGUAGE sql AS 'SELECT 2';
REVOKE ALL ON FUNCTION zz_planted_two() FROM PUBLIC;
CREATE OR REPLACE FUNCTION zz_planted_stray() RETURNS int LANGUAGE sql AS 'SELECT 3';
REVOKE ALL ON FUNCTION zz_planted_stray() FROM PUBLIC;
SQL
# 4. a trigger, and a CHECK calling a function, made in another function's
# file (files apply in name order: check_fn and trg_fn before trg_user)
cat >"$fn/zz_planted_check_fn.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_check_fn(n int) RETURNS boolean
 LANGUAGE sql IMMUTABLE AS 'SELECT n > 0';
REVOKE ALL ON FUNCTION zz_planted_check_fn(int) FROM PUBLIC;
SQL
# (its own file drops it and names it in a comment: neither makes it)
cat >"$fn/zz_planted_trg_fn.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_trg_fn() RETURNS trigger
 LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
REVOKE ALL ON FUNCTION zz_planted_trg_fn() FROM PUBLIC;
-- CREATE TRIGGER zz_planted_trg is in zz_planted_trg_user.sql
DROP TRIGGER IF EXISTS zz_planted_trg ON zz_planted;
SQL
cat >"$fn/zz_planted_trg_user.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_trg_user() RETURNS int LANGUAGE sql AS 'SELECT 4';
REVOKE ALL ON FUNCTION zz_planted_trg_user() FROM PUBLIC;
CREATE OR REPLACE TRIGGER zz_planted_trg BEFORE INSERT ON zz_planted
    FOR EACH ROW EXECUTE FUNCTION zz_planted_trg_fn();
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'zz_planted_chk') THEN
        ALTER TABLE zz_planted ADD CONSTRAINT zz_planted_chk CHECK (zz_planted_check_fn(id));
    END IF;
END
$$;
SQL
# 11. a trigger made by a copy of trigger_ensure's loop (the trigger on
# zz_planted also made by zz_planted_trg_user.sql's own CREATE OR REPLACE
# TRIGGER above)
cat >"$fn/zz_planted_trg_copy.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_trg_copy() RETURNS trigger
 LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
REVOKE ALL ON FUNCTION zz_planted_trg_copy() FROM PUBLIC;
DO $$
DECLARE
    v_def   text;
BEGIN
    FOREACH v_def IN ARRAY ARRAY[
        'CREATE TRIGGER zz_planted_trg_copy BEFORE INSERT ON public.zz_planted FOR EACH ROW EXECUTE FUNCTION public.zz_planted_trg_copy()'
    ] LOOP
        IF NOT EXISTS (SELECT FROM pg_trigger
                        WHERE tgname = split_part(v_def, ' ', 3)
                          AND pg_get_triggerdef(oid) = v_def) THEN
            EXECUTE regexp_replace(v_def, '^CREATE TRIGGER', 'CREATE OR REPLACE TRIGGER');
        END IF;
    END LOOP;
END
$$;
SQL
# 4. (the kept signatures) two bodies of one name the gateway may call
cat >"$fn/zz_planted_twice.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_twice(a int) RETURNS int
 LANGUAGE plpgsql AS $$BEGIN RETURN a; END$$;
CREATE OR REPLACE FUNCTION zz_planted_twice(a int, b int) RETURNS int
 LANGUAGE plpgsql AS $$BEGIN RETURN a + b; END$$;
REVOKE ALL ON FUNCTION zz_planted_twice(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION zz_planted_twice(int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zz_planted_twice(int) TO payments_gateway;
GRANT EXECUTE ON FUNCTION zz_planted_twice(int, int) TO payments_gateway;
SQL
# 6. a function PUBLIC may execute
cat >"$fn/zz_planted_public.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_public() RETURNS int
 LANGUAGE plpgsql AS $$BEGIN RETURN 5; END$$;
GRANT EXECUTE ON FUNCTION zz_planted_public() TO PUBLIC;
SQL
# 7. a SECURITY DEFINER function in LANGUAGE sql that is no wrapper; and a
# kept signature's wrapper (an overload of a name with more arguments),
# which is fine
cat >"$fn/zz_planted_definer_sql.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_definer_sql() RETURNS int
 LANGUAGE sql SECURITY DEFINER SET search_path TO 'public', 'pg_temp' AS 'SELECT 6';
REVOKE ALL ON FUNCTION zz_planted_definer_sql() FROM PUBLIC;
SQL
cat >"$fn/zz_planted_wrapper.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_wrapper(a int, b int) RETURNS int
 LANGUAGE plpgsql SECURITY DEFINER SET search_path TO 'public', 'pg_temp'
AS $$BEGIN RETURN a + b; END$$;
CREATE OR REPLACE FUNCTION zz_planted_wrapper(a int) RETURNS int
 LANGUAGE sql SECURITY DEFINER SET search_path TO 'public', 'pg_temp'
AS 'SELECT zz_planted_wrapper(a, 0)';
REVOKE ALL ON FUNCTION zz_planted_wrapper(int, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION zz_planted_wrapper(int) FROM PUBLIC;
SQL
# 8. a SECURITY DEFINER function without SET search_path
cat >"$fn/zz_planted_no_path.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_no_path() RETURNS int
 LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN RETURN 7; END$$;
REVOKE ALL ON FUNCTION zz_planted_no_path() FROM PUBLIC;
SQL

# 7 and 8 spare an extension's functions (4 and 6 leave them out too): one
# of ours made a member of plpgsql is not reported by either, though it is
# SECURITY DEFINER, LANGUAGE sql and without SET search_path
cat >"$fn/zz_planted_extension.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_extension() RETURNS int
 LANGUAGE sql SECURITY DEFINER AS 'SELECT 8';
REVOKE ALL ON FUNCTION zz_planted_extension() FROM PUBLIC;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_depend
                    WHERE objid = 'zz_planted_extension()'::regprocedure AND deptype = 'e') THEN
        ALTER EXTENSION plpgsql ADD FUNCTION zz_planted_extension();
    END IF;
END
$$;
SQL

# 10. an index on checkouts' created_at whose rows the unsaved methods'
# indexes also hold (status IN ('SUCCESS', 'AUTHORIZED') refutes neither
# of theirs), but not the executing checkouts' (status = 'EXECUTING'
# refutes it); and a table with an index on a and another on a for some
# rows (no predicate on one side: they always share rows)
cat >"$mig/903_zz_planted_overlap.sql" <<'SQL'
CREATE INDEX zz_planted_overlap ON checkouts (created_at)
    WHERE status IN ('SUCCESS', 'AUTHORIZED');
CREATE TABLE zz_planted_keys (a int, b int);
CREATE INDEX zz_planted_keys_a ON zz_planted_keys (a);
CREATE INDEX zz_planted_keys_some ON zz_planted_keys (a) WHERE b > 0;
SQL

# 12. an index of notifications on another key with the PENDING rows'
# predicate (notifications_pending_endpoint's)
cat >"$mig/905_zz_planted_same_predicate.sql" <<'SQL'
CREATE INDEX zz_planted_same_predicate ON notifications (updated_at)
    WHERE status = 'PENDING';
SQL

# 13. a function that turns the sequential scan off and keeps JIT on; and
# one that turns both off
cat >"$fn/zz_planted_jit.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_jit() RETURNS int
 LANGUAGE plpgsql SET enable_seqscan TO 'off' AS $$BEGIN RETURN 9; END$$;
REVOKE ALL ON FUNCTION zz_planted_jit() FROM PUBLIC;
SQL
cat >"$fn/zz_planted_jit_off.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_jit_off() RETURNS int
 LANGUAGE plpgsql SET jit TO 'off' SET enable_bitmapscan TO 'off'
 AS $$BEGIN RETURN 10; END$$;
REVOKE ALL ON FUNCTION zz_planted_jit_off() FROM PUBLIC;
SQL

# 14. a function that turns the sequential scan off and calls a PL/pgSQL
# function that another calls with it on; the same caller calling a
# function that turns it off too; and a function of payments-reconcile's
# (recon_*) calling the first
cat >"$fn/zz_planted_callee.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_callee() RETURNS int
 LANGUAGE plpgsql AS $$BEGIN RETURN 11; END$$;
REVOKE ALL ON FUNCTION zz_planted_callee() FROM PUBLIC;
SQL
cat >"$fn/zz_planted_callee_off.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_callee_off() RETURNS int
 LANGUAGE plpgsql SET jit TO 'off' SET enable_seqscan TO 'off'
 AS $$BEGIN RETURN 12; END$$;
REVOKE ALL ON FUNCTION zz_planted_callee_off() FROM PUBLIC;
SQL
cat >"$fn/zz_planted_caller_on.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_caller_on() RETURNS int
 LANGUAGE plpgsql
 AS $$BEGIN RETURN zz_planted_callee() + zz_planted_callee_off(); END$$;
REVOKE ALL ON FUNCTION zz_planted_caller_on() FROM PUBLIC;
SQL
cat >"$fn/zz_planted_caller_off.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_caller_off() RETURNS int
 LANGUAGE plpgsql SET jit TO 'off' SET enable_seqscan TO 'off'
 AS $$BEGIN RETURN zz_planted_callee() + zz_planted_callee_off(); END$$;
REVOKE ALL ON FUNCTION zz_planted_caller_off() FROM PUBLIC;
SQL
cat >"$fn/recon_zz_planted.sql" <<'SQL'
CREATE OR REPLACE FUNCTION recon_zz_planted() RETURNS int
 LANGUAGE plpgsql SET jit TO 'off' SET enable_seqscan TO 'off'
 AS $$BEGIN RETURN zz_planted_callee(); END$$;
REVOKE ALL ON FUNCTION recon_zz_planted() FROM PUBLIC;
SQL
# 14 through a trigger: a function that turns the sequential scan off
# and moves a checkout's status (fires checkouts_notify, which the
# payment's functions fire with it on), and one that writes a column no
# PL/pgSQL trigger of checkouts is for
cat >"$fn/zz_planted_status_off.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_status_off() RETURNS void
 LANGUAGE plpgsql SET jit TO 'off' SET enable_seqscan TO 'off'
 AS $$BEGIN UPDATE checkouts SET status = 'FAILED' WHERE false; END$$;
REVOKE ALL ON FUNCTION zz_planted_status_off() FROM PUBLIC;
SQL
cat >"$fn/zz_planted_alerted_off.sql" <<'SQL'
CREATE OR REPLACE FUNCTION zz_planted_alerted_off() RETURNS void
 LANGUAGE plpgsql SET jit TO 'off' SET enable_seqscan TO 'off'
 AS $$BEGIN UPDATE checkouts c SET method_alerted_at = now() WHERE c.status = 'SUCCESS' AND false; END$$;
REVOKE ALL ON FUNCTION zz_planted_alerted_off() FROM PUBLIC;
SQL

check planted
if [ "$rc" -eq 1 ] && grep -qE '^sql: [0-9]+ passed, [1-9][0-9]* failed$' "$tmp/planted.out"; then
    ok "the planted tree fails (exit 1, the script ran to its end)"
else
    bad "the planted tree: expected exit 1 and \"sql: N passed, N failed\" (exit $rc)"
    show planted
fi

# as many checks counted on the planted tree as on the clean one: a check
# that could not run (an upgrade that failed before its second run) counts
# as failed, not as nothing
counted() { sed -nE 's/^sql: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$tmp/$1.out" |
            awk '{ print $1 + $2 }'; }
if [ -n "$(counted clean)" ] && [ "$(counted clean)" = "$(counted planted)" ]; then
    ok "as many checks counted on the planted tree as on the clean one ($(counted clean))"
else
    bad "checks counted: $(counted clean) on the clean tree, $(counted planted) on the planted one"
    show planted
fi
reported planted "1: sql/schema.sql edited" 'sql/schema.sql differs from a fresh migrate'
if grep -qxF -e "-$mark" "$tmp/planted.out"; then
    ok "1: the edited line is in the diff"
else
    bad "1: the edited line is not in the diff"
    show planted
fi
reported planted "2: a migration inside the fold" \
    'the migrations up to [0-9]+ make other tables than'
reported planted "3: a database of an earlier layout does not upgrade" \
    'payments-migrate failed on a database of'
reported planted "3: a database of an earlier layout upgrades to another schema" \
    'a database of .*, upgraded, differs from a fresh one'
reported planted "4: a function without its file" \
    'functions without a file in sql/functions/: .*zz_planted_in_migration .*zz_planted_stray '
reported planted "4: a file naming no function" \
    'files in sql/functions/ whose function the migrate did not make: .*zz_planted_nofunc '
reported planted "4: a file defining another function" \
    'zz_planted_two\.sql defines zz_planted_stray;'
reported planted "4: a trigger made outside its function's file" \
    'made elsewhere than their function.s file: .*trigger zz_planted_trg \(in zz_planted_trg_fn\.sql\)'
reported planted "4: a CHECK made outside its function's file" \
    'made elsewhere than their function.s file: .*check zz_planted_chk \(in zz_planted_check_fn\.sql\)'
reported planted "11: a trigger made by a copy of trigger_ensure's loop" \
    'function files that make a trigger without trigger_ensure .*zz_planted_trg_copy\.sql'
reported planted "11: a trigger made by a CREATE OR REPLACE TRIGGER of its file" \
    'function files that make a trigger without trigger_ensure .*zz_planted_trg_user\.sql'
reported planted "4: a kept signature with a body of its own" \
    'functions with more than one body the gateway may call .*zz_planted_twice'
reported planted "5: a migration creating a function" \
    'migrations that create functions .*902_zz_planted_function\.sql'
spared planted "5: a migration naming CREATE FUNCTION in a comment is not reported" \
    'migrations that create functions .*901_zz_planted_values'
reported planted "6: a function PUBLIC may execute" \
    'functions PUBLIC may execute .*zz_planted_public\(\)'
reported planted "7: a SECURITY DEFINER LANGUAGE sql function" \
    'SECURITY DEFINER functions in LANGUAGE sql.*zz_planted_definer_sql\(\)'
spared planted "7: a kept signature's LANGUAGE sql wrapper is not reported" \
    'SECURITY DEFINER functions in LANGUAGE sql.*zz_planted_wrapper\('
reported planted "8: a SECURITY DEFINER function without SET search_path" \
    'SECURITY DEFINER functions without SET search_path.*zz_planted_no_path\(\)'
spared planted "7: an extension's function is not reported" \
    'SECURITY DEFINER functions in LANGUAGE sql.*zz_planted_extension\('
spared planted "8: an extension's function is not reported" \
    'SECURITY DEFINER functions without SET search_path.*zz_planted_extension\('
reported planted "9: a migration adding an enum value and a table" \
    'migrations that add an enum value and do more .*: 900_zz_planted_mixed\.sql'
spared planted "9: a migration adding enum values only is not reported" \
    'migrations that add an enum value and do more .*901_zz_planted_values'
reported planted "9: a table after a value holding -- on the same line" \
    'migrations that add an enum value and do more .*904_zz_planted_hidden\.sql'
reported planted "10: a partial index sharing rows with another on the same keys" \
    'indexes on the same keys whose predicates .*checkouts: checkouts_method_unalerted and zz_planted_overlap;'
reported planted "10: an index on the same keys as a partial one" \
    'indexes on the same keys whose predicates .*zz_planted_keys: zz_planted_keys_a and zz_planted_keys_some;'
spared planted "10: indexes on the same keys whose predicates refute each other are not reported" \
    'indexes on the same keys whose predicates .*checkouts_executing_since and zz_planted_overlap'
reported planted "12: a partial index with another's predicate" \
    'partial indexes of one table with the same predicate .*notifications: notifications_pending_endpoint and zz_planted_same_predicate'
spared planted "12: partial indexes with predicates of their own are not reported" \
    'partial indexes of one table with the same predicate .*notifications_pending_since'
reported planted "13: a function that turns a scan off and keeps JIT on" \
    'functions that turn a scan type off but not JIT .*zz_planted_jit\(\)'
spared planted "13: a function that turns a scan and JIT off is not reported" \
    'functions that turn a scan type off but not JIT .*zz_planted_jit_off'
reported planted "14: a function that turns a scan off and calls one run with it on elsewhere" \
    'turn a scan type off and call one that runs with it on elsewhere .*zz_planted_caller_off calls zz_planted_callee(,|$)'
spared planted "14: a callee that turns the scan off too is not reported" \
    'turn a scan type off and call one that runs with it on elsewhere .*calls zz_planted_callee_off'
spared planted "14: a function of payments-reconcile's is not reported" \
    'turn a scan type off and call one that runs with it on elsewhere .*recon_zz_planted'
reported planted "14: a function that turns a scan off and fires a trigger run with it on elsewhere" \
    'turn a scan type off and call one that runs with it on elsewhere .*zz_planted_status_off fires checkouts_notify \(trigger checkouts_notify on checkouts\)'
spared planted "14: a write of a column no trigger is for is not reported" \
    'turn a scan type off and call one that runs with it on elsewhere .*zz_planted_alerted_off'

# --- the committed tree with an applied migration edited -----------------------
# 3's second run: a comment added to 045, which a database of the fold's
# layout recorded as applied (not a file history.txt names: a checksum it
# lists is taken as the file's own), leaves every schema as it was, so the
# upgrade itself passes; but payments-migrate warns at every run that 045
# changed since it was applied: that database is not current at the
# second run
git -C "$tree" checkout -q -- . && git -C "$tree" clean -fdq
cp "$top/ci/sql-check.sh" "$tree/ci/sql-check.sh"
echo '-- planted by ci/sql-check-test.sh: an applied migration edited' \
    >>"$tree/sql/migrations/045_table_comments.sql"
check edited
fold_ref=$(sed -nE 's/^fold_ref=([0-9a-f]+)$/\1/p' "$tree/ci/sql-check.sh")
reported edited "3: an upgraded database not current at the second run" \
    "a database of $fold_ref's layout, upgraded, is not current at the second run"
spared edited "3: the upgrade itself passes (the edit is a comment)" \
    'upgraded, differs from a fresh one|payments-migrate failed'

echo "sqlcheck: $runs runs of ci/sql-check.sh in $((SECONDS - start)) s"
echo "sqlcheck: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
