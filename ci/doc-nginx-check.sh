#!/usr/bin/env bash
# Every nginx configuration block of README.md and doc/*.md through
# `nginx -t` with the module loaded, as an operator would paste it.
# Usage: ci/doc-nginx-check.sh [MODULE.so]   (default build/nginx/...)
#
# A block is a fenced ```nginx block.  The comment line right above its
# fence may say what it is (CONTRIBUTING.md, "Docs"):
#   <!-- nginx-check: main -->      a whole nginx.conf (the default when the
#                                   block has "http {" or "load_module")
#   <!-- nginx-check: http -->      directives of http { }
#   <!-- nginx-check: server -->    directives of a server { } (the
#                                   gateway's own http-level lines around)
#   <!-- nginx-check: location -->  directives of a location { }
#   <!-- nginx-check: skip REASON --> not checked, and why
# A block without "http {" or "load_module" and without a tag is an error:
# say what it is.
#
# Paths under /etc and /var are moved into a temporary directory and the
# files the block names are made there with placeholder contents of the
# kind each directive reads (a pay-token key, an encryption key file, a
# Stripe or Adyen key of the block's mode, a TLS certificate and its key, an
# htpasswd), or what a "# VALUE" comment after the path on its line says
# the file holds; /usr/share/ngx-payments/html is the tree's html/.  Prints
# "docs-nginx: N passed, N failed" last.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
module=${1:-$top/${BUILD:-build}/nginx/ngx_http_payments_module.so}
[ -f "$module" ] || { echo "doc-nginx-check: no module at $module (make module)" >&2; exit 1; }
module=$(cd "$(dirname "$module")" && pwd)/$(basename "$module")

tmp=$(mktemp -d /tmp/ngx-payments-doc-nginx.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# one certificate and key for every TLS path a block names
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 2 -subj /CN=pay.example.com -keyout "$tmp/tls.key" \
    -out "$tmp/tls.crt" >/dev/null 2>&1

# The blocks: FILE LINE TAG, the text in $tmp/blocks/N.conf
mkdir -p "$tmp/blocks"
n=0
for f in README.md doc/*.md; do
    awk -v out="$tmp/blocks" -v file="$f" -v start="$n" '
        /^```nginx[ \t]*$/ {
            inblock = 1; start++
            tag = (prev ~ /^<!-- nginx-check: /) ? prev : ""
            sub(/^<!-- nginx-check: */, "", tag); sub(/ *-->.*$/, "", tag)
            printf "%s %d %s\n", file, FNR, (tag == "" ? "-" : tag) \
                > (out "/" start ".where")
            printf "" > (out "/" start ".conf")
            next
        }
        inblock && /^```/ { inblock = 0; next }
        inblock { print >> (out "/" start ".conf"); next }
        NF { prev = $0 }
    ' "$f"
    n=$(ls "$tmp/blocks" | grep -c '\.where$' || true)
done

# content FILE KIND: a placeholder of the kind a directive reads (mode 0600)
content() {
    local path=$1 kind=$2
    mkdir -p "$(dirname "$path")"
    case $kind in
        token)     echo "0123456789abcdef0123456789abcdef-placeholder" ;;
        enckeys)   echo "k1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" ;;
        sk_live)   echo "sk_live_0123456789abcdef" ;;
        sk_test)   echo "sk_test_0123456789abcdef" ;;
        whsec)     echo "whsec_0123456789abcdef0123456789" ;;
        adyen_key) echo "AQEyhmfxK0123456789abcdef" ;;
        adyen_hmac) echo "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056" ;;
        secret)    echo "placeholder_secret_0123456789abcdef" ;;
        htpasswd)  echo 'adyen:$apr1$e2etest$S6A4VpFdxzZAPMEU7N2YQ/' ;;
        cert)      cat "$tmp/tls.crt" ;;
        key)       cat "$tmp/tls.key" ;;
    esac > "$path"
    chmod 600 "$path"
}

# make_files CONF: the files CONF's statements name, by what reads them
make_files() {
    local stmt path mode
    set -f
    # one statement a line, comments out
    sed -e 's/#.*$//' "$1" | tr '\n' ' ' | tr ';{}' '\n\n\n' |
    while IFS= read -r stmt; do
        mode=sk_test
        [[ $stmt == *mode=live* ]] && mode=sk_live
        for w in $stmt; do
            path=${w#*=}
            case $w in
                secret_file=*|webhook_secret_file=*|transfers_secret_file=*|answer_secret_file=*|ca_file=*|ca=*|password_file=*|hash_key_file=*|tls_ca_file=*|tls_certificate=*|tls_certificate_key=*) ;;
                *) path= ;;
            esac
            [ -n "$path" ] || continue
            path=${path%\"}
            case $stmt:$w in
                *payments_psp*dialect=stripe*:secret_file=*) content "$path" "$mode" ;;
                *payments_psp*dialect=stripe*:webhook_secret_file=*) content "$path" whsec ;;
                *payments_psp*dialect=adyen*:secret_file=*|*:transfers_secret_file=*) content "$path" adyen_key ;;
                *payments_psp*dialect=adyen*:webhook_secret_file=*) content "$path" adyen_hmac ;;
                *:ca_file=*|*:ca=*|*:tls_ca_file=*|*:tls_certificate=*) content "$path" cert ;;
                *:tls_certificate_key=*) content "$path" key ;;
                *) content "$path" secret ;;
            esac
        done
        set -- $stmt
        case ${1:-} in
            payments_pay_token_key) content "$2" token ;;
            payments_encryption_key) content "$2" enckeys ;;
            payments_admin_key_file) content "$2" secret ;;
            ssl_certificate|ssl_trusted_certificate|ssl_client_certificate) content "$2" cert ;;
            ssl_certificate_key) content "$2" key ;;
            auth_basic_user_file) content "$2" htpasswd ;;
        esac
    done
}

# the gateway's own http-level lines, around a server or location fragment
base="payments_database \"hostaddr=127.0.0.1 port=5432 dbname=payments user=payments_gateway\";
payments_public_origin https://pay.example.com;
payments_pay_token_key $tmp/base/paytoken.key;
payments_psp stripe dialect=stripe url=https://api.stripe.com secret_file=$tmp/base/stripe.key
             hosted=https://checkout.stripe.com webhook_secret_file=$tmp/base/whsec.key;"
content "$tmp/base/paytoken.key" token
content "$tmp/base/stripe.key" sk_test
content "$tmp/base/whsec.key" whsec

passed=0
failed=0
for where in $(ls "$tmp/blocks"/*.where | sort -V); do
    read -r file line tag < "$where"
    block=${where%.where}.conf
    dir=${where%.where}.d
    mkdir -p "$dir/logs"

    # the block's paths moved under its own directory
    sed -e "s#\\(^\\|[ =\"]\\)/etc/#\\1$dir/etc/#g" \
        -e "s#\\(^\\|[ =\"]\\)/var/#\\1$dir/var/#g" \
        -e "s#/usr/share/ngx-payments/html#$top/html#g" \
        -e "s#^\\( *load_module \\).*;#\\1$module;#" "$block" > "$dir/block.conf"
    make_files "$dir/block.conf"
    # a file path followed on its line by "# VALUE": the doc says what the
    # file holds, and it holds that
    sed -n 's/.*_file=\([^ ;]*\).*# *\([^ ]*\) *$/\1 \2/p' "$dir/block.conf" |
        while read -r path value; do
            printf '%s\n' "$value" > "$path"
            chmod 600 "$path"
        done

    if [ "$tag" = - ]; then
        if grep -qE '^ *(http +\{|load_module )' "$dir/block.conf"; then
            tag=main
        else
            echo "FAIL $file:$line: a fragment without <!-- nginx-check: CONTEXT --> above it"
            failed=$((failed + 1))
            continue
        fi
    fi

    conf=$dir/nginx.conf
    case $tag in
        main)
            {
                grep -q '^ *load_module ' "$dir/block.conf" || echo "load_module $module;"
                cat "$dir/block.conf"
                grep -qE '^ *events' "$dir/block.conf" || echo "events {}"
            } > "$conf" ;;
        http)
            printf 'load_module %s;\nevents {}\nhttp {\n%s\n}\n' \
                "$module" "$(cat "$dir/block.conf")" > "$conf" ;;
        server)
            printf 'load_module %s;\nevents {}\nhttp {\n%s\nserver {\nlisten 127.0.0.1:8443;\n%s\n}\n}\n' \
                "$module" "$base" "$(cat "$dir/block.conf")" > "$conf" ;;
        location)
            printf 'load_module %s;\nevents {}\nhttp {\n%s\nserver {\nlisten 127.0.0.1:8443;\nlocation / {\n%s\n}\n}\n}\n' \
                "$module" "$base" "$(cat "$dir/block.conf")" > "$conf" ;;
        skip*)
            echo "skip $file:$line (${tag#skip})"
            continue ;;
        *)
            echo "FAIL $file:$line: unknown context \"$tag\" (main, http, server, location or skip)"
            failed=$((failed + 1))
            continue ;;
    esac

    if out=$(nginx -t -q -p "$dir/" -c "$conf" -e "$dir/error.log" 2>&1); then
        passed=$((passed + 1))
        echo "ok   $file:$line ($tag)"
    else
        failed=$((failed + 1))
        echo "FAIL $file:$line ($tag): nginx -t refused it:"
        printf '%s\n' "$out" | sed "s#$dir/##g; s/^/     | /"
    fi
done

echo "docs-nginx: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
