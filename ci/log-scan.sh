#!/usr/bin/env bash
# Searches the gateway's logs (and its /metrics at the end) of a finished run for every secret the run
# used: the files under RUN/conf that hold secrets, every API key, pay token
# and PSP token the tests recorded (RUN/secrets-used, see secret_used() in
# tests/e2e/harness_merchants.h), the buyer e-mail the tests send, and the card
# numbers the card-data tests try.  The mock PSP's own log is not ours and
# is left out.  Prints what kind of value was found where, never the value.
#
# At `error_log ... debug` nginx itself writes every request header and the
# request line (an Authorization header, a pay link's ?t=) before any module
# runs: that is what its debug level is, and why production runs at notice.
# Its own debug lines are left out; the module's ("payments..."), and every
# line at another level, are searched.
#
#   ci/log-scan.sh RUN
set -euo pipefail

run=${1:?usage: $0 RUN}
logs=()
# every log of the run but the mock PSP's: the gateway's (error.log,
# access.log, limits.log), every other gateway a test starts
# (<name>-<pid>-error.log, <name>-access.log: tests/e2e/harness_gateways.c),
# PostgreSQL's, the services' and the merchants' endpoint (receiver.log,
# which must not print what it checks), and /metrics at the end
for f in "$run"/logs/*.log "$run/logs/metrics.txt"; do
    case ${f##*/} in mock*.log) continue ;; esac
    [ -f "$f" ] && logs+=("$f")
done
[ -f "$run/pg/postgres.log" ] && logs+=("$run/pg/postgres.log")
if [ ${#logs[@]} -eq 0 ]; then
    echo "log-scan: no logs under $run/logs" >&2
    exit 1
fi

needles=$(mktemp)
values=$(mktemp)
searched=$(mktemp)
trap 'rm -f "$needles" "$values" "$searched" "$searched.hits"' EXIT

# kind<TAB>value, one per line
for f in psp.secret psp_live.secret webhook.secret paytoken.key adyen.secret adyen_transfers.secret \
         adyen.hmac generic.secret risk.secret risk_answer.secret admin.key; do
    if [ -s "$run/conf/$f" ]; then
        printf 'secret file %s\t%s\n' "$f" "$(tr -d '\n' <"$run/conf/$f")" >>"$needles"
    fi
done
if [ -s "$run/conf/encryption.key" ]; then
    # payments_encryption_key: each key's base64
    grep -v '^#' "$run/conf/encryption.key" | awk 'NF == 2 { print $2 }' |
        sed 's/^/encryption key\t/' >>"$needles"
fi
if [ -s "$run/conf/generic_jwt.key" ]; then
    # the private key's base64 body, line by line
    grep -v -- '-----' "$run/conf/generic_jwt.key" |
        sed 's/^/generic JWT private key\t/' >>"$needles"
fi
if [ -f "$run/secrets-used" ]; then
    sort -u "$run/secrets-used" | sed 's/^/a key or token a test used\t/' >>"$needles"
fi
for v in ann@example.com 4111111111111111 5555555555554444 6011111111111117 \
         4000056655665556 '4000 0566 5566 5556' 378282246310005 \
         '3782-822463-10005' 4242424242424242; do
    printf 'buyer data\t%s\n' "$v" >>"$needles"
done

total=$(wc -l <"$needles")
# shorter values would match by chance
awk -F'\t' 'length($2) >= 8 { print $2 }' "$needles" | sort -u >"$values"
found=0
for log in "${logs[@]}"; do
    # nginx's own debug lines out (above); a debug line's message follows
    # "PID#TID: " and, in a request, "*CONNECTION ".  A line without the
    # time in front continues the line before it (nginx's dump of a request
    # it proxies spans lines, its headers one a line): it goes with it.
    awk 'BEGIN { keep = 1 }
         /^[0-9\/]+ [0-9:]+ \[/ {
             keep = !/^[0-9\/]+ [0-9:]+ \[debug\] / ||
                    /^[0-9\/]+ [0-9:]+ \[debug\] [0-9]+#[0-9]+: (\*[0-9]+ )?payments/
         }
         keep' "$log" >"$searched"
    # every value at once (a debug log is large), then which ones
    grep -oF -f "$values" "$searched" | sort -u >"$searched.hits" || true
    [ -s "$searched.hits" ] || continue
    while IFS= read -r kind; do
        echo "log-scan: $kind found in $(basename "$log")" >&2
        found=$((found + 1))
    done < <(awk -F'\t' 'NR == FNR { hit[$0] = 1; next }
                         length($2) >= 8 && ($2 in hit) { print $1 }' \
                 "$searched.hits" "$needles")
done

if [ "$found" -ne 0 ]; then
    echo "log-scan: $found leak(s) in ${#logs[@]} log files" >&2
    exit 1
fi
echo "log-scan: $total secrets, tokens and buyer data searched in ${#logs[@]} log files: none found"
