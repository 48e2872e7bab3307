#!/usr/bin/env bash
# Fuzzes every documented REST route with schemathesis (from PyPI, in a virtualenv of its own
# under $TMPDIR): starts `clasper serve` (one process, development token) on a free port against
# a scratch PostgreSQL database when DATABASE_URL's server answers, else on embedded PGlite in a
# scratch directory, then runs schemathesis against GET /openapi.json (default check:
# not_a_server_error). Schemathesis counts every 5xx; this script then fails only on the ones that
# are defects: any status other than the documented 501 of a route not available yet and the 503
# of an LLM route without a configured provider, or an error in the server's log. Build first
# (`pnpm build`).
#
#   bash scripts/fuzz-api.sh                       # 50 examples per route, no server errors
#   bash scripts/fuzz-api.sh -n 200 -c all         # more examples, every check
#
# Extra arguments go to `schemathesis run`. Not part of CI (it needs PyPI and minutes); run it
# after changing a contract, a handler's validation or the gateway. Exits with schemathesis's code.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${TMPDIR:-/tmp}/clasper-fuzz"
VENV="$WORK/venv"
SCHEMATHESIS_VERSION=4.32.5
mkdir -p "$WORK"

if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

PORT="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
DATA="$(mktemp -d "$WORK/run.XXXXXX")"
ADMIN_URL="${FUZZ_ADMIN_URL:-postgres://clasper_admin:clasper_admin@127.0.0.1:5432/postgres}"
DB="clasper_fuzz_$$"
ENV=(CLASPER_PORT="$PORT" CLASPER_HOST=127.0.0.1 LOG_LEVEL=warn)
if psql "$ADMIN_URL" -qc "create database $DB owner clasper" 2>/dev/null; then
  ENV+=(DATABASE_URL="postgres://clasper:clasper@127.0.0.1:5432/$DB")
  echo "fuzz-api: PostgreSQL database $DB" >&2
else
  DB=""
  echo "fuzz-api: PostgreSQL not reachable through $ADMIN_URL; embedded PGlite in $DATA" >&2
fi

cleanup() {
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  [ -n "$DB" ] && psql "$ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
  rm -rf "$DATA"
}
trap cleanup EXIT

(cd "$DATA" && exec env "${ENV[@]}" node "$ROOT/packages/cli/dist/bin.js" serve > "$DATA/serve.log" 2>&1) &
SERVER=$!
for _ in $(seq 1 100); do
  grep -q "Development token" "$DATA/serve.log" 2>/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$DATA/serve.log" >&2; exit 1; }
  sleep 0.2
done
TOKEN="$(grep -A2 "Development token" "$DATA/serve.log" | tail -1 | tr -d ' ')"

set +e
# From the scratch directory: schemathesis keeps its cache (failing cases, as curl commands) in
# ./.schemathesis, which belongs to the run, not to the checkout.
(cd "$DATA" && "$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/openapi.json" \
  -H "Authorization: Bearer $TOKEN" -c not_a_server_error -n 50 --request-timeout 30 "$@") | tee "$DATA/report.txt"
set -e
FAILED=0
if grep -E '^\[5[0-9][0-9]\]' "$DATA/report.txt" | grep -vqE '^\[50[13]\]'; then
  echo "fuzz-api: server errors other than 501/503:" >&2
  grep -E '^\[5[0-9][0-9]\]' "$DATA/report.txt" | grep -vE '^\[50[13]\]' | sort | uniq -c >&2
  FAILED=1
fi
if grep -q '"level":"error"' "$DATA/serve.log"; then
  echo "fuzz-api: the server logged errors:" >&2
  grep '"level":"error"' "$DATA/serve.log" | cut -c1-400 >&2
  FAILED=1
fi
exit "$FAILED"
