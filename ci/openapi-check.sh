#!/usr/bin/env bash
# Every answer the e2e suite recorded, checked against doc/openapi.yaml
# (tests/openapi/validate.js; the document itself is validated first), and
# every notification body the e2e receiver verified against its webhook's
# schema (the document's webhooks: section).
#   ci/openapi-check.sh RESPONSES.jsonl [NOTIFICATIONS.jsonl]
# Installs the validator from tests/openapi/package-lock.json (npm ci) when
# tests/openapi/node_modules lacks it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rec=${1:?usage: $0 RESPONSES.jsonl}
dir=$top/tests/openapi

command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "openapi: node and npm are needed (ci/install-deps.sh --browser installs them)" >&2; exit 1; }

if [ ! -d "$dir/node_modules/@seriousme/openapi-schema-validator" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
        { echo "openapi: npm ci in tests/openapi failed" >&2; exit 1; }
fi

node "$dir/validate.js" "$top/doc/openapi.yaml" "$rec" ${2:+"$2"}
