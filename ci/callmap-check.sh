#!/usr/bin/env bash
# Which file calls which, read from the compiler's own output (the symbols
# each object defines and the ones it leaves undefined, as nm lists them),
# for the glue (ngx_payments_module/) and for the core (src/):
#
#   ci/callmap-check.sh            check: no cycle between files but those
#                                  ci/callmap-cycles.txt still lists (a
#                                  listed one that is gone fails too: the
#                                  list only shrinks), and the glue's map in
#                                  ngx_http_payments_module.h names exactly
#                                  the calls the code makes
#   ci/callmap-check.sh --print    the calls as the code has them, in the
#                                  map's own form, then the check
#   ci/callmap-check.sh --write    the header's map rewritten from the code
#                                  (its entries only), then the check
#
# A call is a reference from one object to a function (nm type T) another
# object defines.  References to data (the module's ngx_module_t, the
# metrics zone's counters, a pool) are not calls: every file may use them.
# Needs the objects of `make module core` ($BUILD, default build).
#
# The map is the block of ngx_http_payments_module.h that follows the line
# naming this script; an entry is a line
#    *   _register.c -> _psp_call.c _pg.c _response.c _util.c
# (a file's calls may go on over several entries; "-> -" says it calls no
# other glue file).  Its output, when it fails, names the cycles as sets
# of files that reach each other, and each call the map lacks or names
# without the code making it, with the functions behind every call.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
glue_objs=$build/nginx/objs/addon/ngx_payments_module
core_lib=$build/libpayments.a
map_header=ngx_payments_module/ngx_http_payments_module.h
print=0
write=0
[ "${1:-}" = --print ] && print=1
[ "${1:-}" = --write ] && write=1

if ! ls "$glue_objs"/*.o >/dev/null 2>&1 || [ ! -f "$core_lib" ]; then
    echo "callmap-check: the objects are missing (make module core)" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# "<file> <symbol> <T|U>" for every object of a part; file names as the
# map writes them: the glue's without ngx_http_payments, the core's as
# src/ names them.
symbols() {
    local name o
    for o in "$@"; do
        name=$(basename "$o" .o)
        name=${name#ngx_http_payments}.c
        nm -g --defined-only "$o" | awk -v f="$name" '$2 == "T" { print f, $3, "T" }'
        nm -u "$o" | awk -v f="$name" '{ print f, $2, "U" }'
    done
}

# "<caller> <callee> <function>" for every call between two files
calls() {
    awk '$3 == "T" { def[$2] = $1; next }
         $3 == "U" { use[NR] = $1 " " $2 }
         END {
             for (i in use) {
                 split(use[i], u, " ")
                 if ((u[2] in def) && def[u[2]] != u[1])
                     print u[1], def[u[2]], u[2]
             }
         }' "$1" | sort -u
}

# the sets of files that reach each other (a transitive closure: a few
# dozen files)
cycles() {
    awk '{ e[$1, $2] = 1; n[$1] = 1; n[$2] = 1 }
         END {
             for (k in n) for (i in n) if (e[i, k]) for (j in n)
                 if (e[k, j]) e[i, j] = 1
             for (i in n) {
                 if (done[i] || !e[i, i]) continue
                 set = i
                 for (j in n) if (j != i && e[i, j] && e[j, i]) {
                     set = set " " j; done[j] = 1
                 }
                 done[i] = 1
                 print set
             }
         }' "$1" | while read -r line; do
             tr ' ' '\n' <<<"$line" | sort | tr '\n' ' ' | sed 's/ $//'
             echo
         done | sort
}

symbols "$glue_objs"/*.o >"$work/glue.sym"
mkdir "$work/core"
(cd "$work/core" && ar x "$top/$core_lib")
symbols "$work/core"/*.o >"$work/core.sym"
calls "$work/glue.sym" >"$work/glue.calls"
calls "$work/core.sym" >"$work/core.calls"

# the map's entries: a file and what it calls, wrapped at 79 columns,
# "-> -" for a file that calls no other glue file
{
    awk '{ print $1, $2 }' "$work/glue.calls" | sort -u
    awk '{ print $1, "-" }' "$work/glue.sym" | sort -u
} | awk '{ if ($2 != "-") to[$1] = to[$1] " " $2; else if (!($1 in to)) to[$1] = "" }
         END { for (f in to) print f, (to[f] == "" ? " -" : to[f]) }' |
    sort | awk '{
        line = sprintf(" *   %-20s ->", $1)
        for (i = 2; i <= NF; i++) {
            if (length(line) + 1 + length($i) > 79) {
                print line
                line = sprintf(" *   %-20s ->", $1)
            }
            line = line " " $i
        }
        print line
    }' >"$work/map.new"

if [ "$write" = 1 ]; then
    awk -v new="$work/map.new" '
        /ci\/callmap-check\.sh/ { on = 1 }
        on && /^ \*[ \t]+_[a-z_]+\.c[ \t]+->/ {
            if (!done) { while ((getline l < new) > 0) print l; done = 1 }
            next
        }
        on && /\*\// { on = 0 }
        { print }' "$map_header" >"$work/header" && cat "$work/header" >"$map_header"
    echo "callmap-check: $map_header's map written from the code"
fi

if [ "$print" = 1 ]; then
    echo "the glue's calls, as the map writes them:"
    cat "$work/map.new"
    echo
    echo "the core's calls:"
    awk '{ print $1, $2 }' "$work/core.calls" | sort -u |
        awk '{ to[$1] = to[$1] " " $2 } END { for (f in to) print f, to[f] }' |
        sort | awk '{ printf "  %-20s ->", $1; for (i = 2; i <= NF; i++) printf " %s", $i; print "" }'
    echo
fi

rc=0
known=ci/callmap-cycles.txt
for part in glue core; do
    awk '{ print $1, $2 }' "$work/$part.calls" | sort -u >"$work/$part.edges"
    cycles "$work/$part.edges" >"$work/$part.cycles"
    # the cycles still to break, listed: "<part>: <files, sorted>"
    { grep "^$part: " "$known" 2>/dev/null || true; } | sed "s/^$part: //" |
        sort >"$work/$part.known"
    comm -13 "$work/$part.known" "$work/$part.cycles" >"$work/$part.new"
    comm -23 "$work/$part.known" "$work/$part.cycles" >"$work/$part.gone"
    if [ -s "$work/$part.gone" ]; then
        rc=1
        echo "callmap-check: $known lists a cycle of the $part that is gone (take it out):"
        sed 's/^/  cycle: /' "$work/$part.gone"
    fi
    while read -r set; do
        echo "callmap-check: still to break, listed in $known: $set"
    done <"$work/$part.known"
    if [ -s "$work/$part.new" ]; then
        rc=1
        echo "callmap-check: the $part's files call each other in a cycle:"
        while read -r set; do
            echo "  cycle: $set"
            for a in $set; do
                for b in $set; do
                    awk -v a="$a" -v b="$b" '$1 == a && $2 == b {
                        f[++n] = $3 }
                        END { if (n) { printf "    %s -> %s:", a, b
                                       for (i = 1; i <= n; i++) printf " %s", f[i]
                                       print "" } }' "$work/$part.calls"
                done
            done
        done <"$work/$part.new"
    fi
done

# the map: the header's entries after the line naming this script
awk '/ci\/callmap-check\.sh/ { on = 1; next }
     on && /\*\// { exit }
     on && /^ \*[ \t]+_[a-z_]+\.c[ \t]+->/ {
         sub(/^ \*[ \t]+/, "")
         f = $1
         for (i = 3; i <= NF; i++) if ($i != "-") print f, $i
         if (NF == 3 && $3 == "-") print f, "-"
         seen = 1
     }
     END { if (!seen) exit 3 }' "$map_header" >"$work/map.raw" || {
    echo "callmap-check: $map_header has no map after a line naming ci/callmap-check.sh"
    echo "  (--print writes one from the code)"
    exit 1
}
grep -v ' -$' "$work/map.raw" | sort -u >"$work/map.edges" || true

comm -13 "$work/map.edges" "$work/glue.edges" >"$work/missing"
comm -23 "$work/map.edges" "$work/glue.edges" >"$work/extra"
if [ -s "$work/missing" ]; then
    rc=1
    echo "callmap-check: calls the code makes that the map does not name:"
    while read -r a b; do
        printf '  %s -> %s:' "$a" "$b"
        awk -v a="$a" -v b="$b" '$1 == a && $2 == b { printf " %s", $3 }' "$work/glue.calls"
        echo
    done <"$work/missing"
fi
if [ -s "$work/extra" ]; then
    rc=1
    echo "callmap-check: calls the map names that the code does not make:"
    awk '{ print "  " $1 " -> " $2 }' "$work/extra"
fi
# every glue file has its entry, even one that calls no other file
for f in $(awk '{ print $1 }' "$work/glue.sym" | sort -u); do
    if ! grep -q "^$f " "$work/map.raw"; then
        rc=1
        echo "callmap-check: the map has no entry for $f"
    fi
done

if [ "$rc" = 0 ]; then
    echo "callmap-check: $(wc -l <"$work/glue.edges") calls between $(awk '{ print $1 }' "$work/glue.sym" | sort -u | wc -l) glue files and $(wc -l <"$work/core.edges") between the core's files, no cycle but those listed, the map true"
fi
exit "$rc"
