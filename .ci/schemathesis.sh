#!/usr/bin/env bash
# The contract test: schemathesis generates requests from openapi.yaml and
# checks that a live broker answers them as the document says (checks
# not_a_server_error, status_code_conformance, content_type_conformance and
# response_schema_conformance). Any failure fails the script.
#
#   ./.ci/schemathesis.sh          (.ci/test.sh runs it after the other tests)
#
# It starts, on loopback and on free ports, in a temporary directory removed
# at exit: its own redis-server (no persistence), the broker on that Redis
# (the debug build, target/debug/keybroker), and the benchmark's product
# upstream (bench-upstream, 200 to everything). Through the admin API it
# creates a main instance, whose product `search` reaches that upstream, and
# a scratch instance for the admin operations that change or delete things;
# it exchanges the main secret for access tokens. schemathesis gets these
# credentials and ids (.ci/schemathesis.toml), so that the admin, public and
# gateway routes are exercised past their authentication. Every process
# started here is stopped on exit, whatever happens.
#
# Two runs, about two minutes in all: every operation but the two that end
# sessions, with one session's token; then those two, /v1/revoke and the
# signing-key rotation, /v1/revoke with another session's token.
#
# schemathesis runs from a virtualenv under the target directory, created on
# first use from the pinned requirements (.ci/schemathesis-requirements.txt)
# and reused while they are unchanged.
#
# Environment: CARGO_TARGET_DIR (as cargo), SCHEMATHESIS_SECONDS (the first
# run's time, default 110), SCHEMATHESIS_MAX_EXAMPLES (per
# operation and round, default 25; rounds repeat until the time is spent),
# SCHEMATHESIS_SEED (default fixed, so that a CI run is reproducible;
# `random` for a new one), SCHEMATHESIS_REPORT_DIR (keep every request and
# response there, as HAR files, credentials included).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
bin="$target/debug/keybroker"
upstream_bin="$target/debug/examples/bench-upstream"
venv="$target/schemathesis-venv"
requirements=.ci/schemathesis-requirements.txt
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
seed="${SCHEMATHESIS_SEED:-20250101}"
seconds="${SCHEMATHESIS_SECONDS:-110}"

die() {
  echo "schemathesis.sh: $*" >&2
  exit 1
}

# The debug build that the tests and the benchmark's smoke run use: nothing
# to do after them.
cargo build --locked --bin keybroker --examples
for tool in redis-server redis-cli curl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done

# ------------------------------------------------------------------ schemathesis

stamp="$venv/.requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null || [ ! -x "$venv/bin/schemathesis" ]; then
  echo "schemathesis.sh: installing schemathesis into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
  cp "$requirements" "$stamp"
fi
schemathesis="$venv/bin/schemathesis"

# ------------------------------------------------------------------ processes

tmp=$(mktemp -d "${TMPDIR:-/tmp}/keybroker-schemathesis.XXXXXX")
pids=()

# shellcheck source=bench/servers.sh
. bench/servers.sh

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_pids
  if [ "$status" -ne 0 ] && [ -f "$tmp/broker.log" ]; then
    echo "schemathesis.sh: the broker's last log lines:" >&2
    tail -n 20 "$tmp/broker.log" >&2 || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

run_secrets "$bin"
start_redis

free_port
port_up=$picked
"$upstream_bin" --workers 1 --listen "127.0.0.1:$port_up" >"$tmp/upstream.log" 2>&1 &
pids+=($!)
wait_ready upstream "$!" "http://127.0.0.1:$port_up/"

free_port
port=$picked
base="http://127.0.0.1:$port"
env -u RUST_LOG \
  KEYBROKER_LISTEN="127.0.0.1:$port" \
  KEYBROKER_WORKERS=2 \
  KEYBROKER_REDIS_URL="redis://127.0.0.1:$redis_port/" \
  KEYBROKER_SIGNING_KEY_FILE="$tmp/signing.pem" \
  KEYBROKER_ADMIN_TOKEN="$admin_token" \
  KEYBROKER_PEPPER="$pepper" \
  KEYBROKER_KEY_ENCRYPTION_KEY="$key_encryption_key" \
  KEYBROKER_LOG_LEVEL=warn \
  "$bin" serve >"$tmp/broker.log" 2>&1 &
pids+=($!)
wait_ready broker "$!" "$base/readyz"

# ------------------------------------------------------------------ credentials

# call NAME EXPECTED_STATUS CURL_ARGS...: the response body in $tmp/NAME.json.
call() {
  local name=$1 expected=$2 status
  shift 2
  status=$(curl -s -o "$tmp/$name.json" -w '%{http_code}' "$@" || true)
  [ "$status" = "$expected" ] || die "$name: expected $expected, got $status: $(head -c 300 "$tmp/$name.json")"
}

# json NAME EXPRESSION: a value from $tmp/NAME.json (a Python expression on `d`).
json() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$tmp/$1.json" "$2"
}

admin=(-H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json')

# instance NAME: an instance whose product `search` (kind `custom`: every
# operation) reaches the upstream. Its rate limit is the maximum, so that the
# run checks the contract, not the limiter (which the black-box tests cover).
instance() {
  call "$1" 201 -X POST "$base/admin/v1/instances" "${admin[@]}" --data-binary \
    "{\"name\":\"$1\",\"products\":{\"search\":{\"upstream\":\"http://127.0.0.1:$port_up/\",\"kind\":\"custom\",\"rate_limit_per_minute\":1000000}}}"
}
instance main
instance_id=$(json main 'd["id"]')
api_key=$(json main 'd["api_key"]')
secret=$(json main 'd["secret"]["value"]')
call experience 200 -X POST "$base/admin/v1/instances/$instance_id/experiences/search/regenerate-token" \
  "${admin[@]}" --data-binary '{}'
experience_token=$(json experience 'd["token"]["value"]')

# token NAME: a new session's access token.
token() {
  call "$1" 200 -X POST "$base/v1/auth" -H "x-inbenta-key: $api_key" \
    -H 'Content-Type: application/json' --data-binary "{\"secret\":\"$secret\"}"
  json "$1" 'd["accessToken"]'
}
access_token=$(token session)
revoke_token=$(token revoke-session)

# The scratch instance, for the admin operations that change things.
instance scratch
scratch_id=$(json scratch 'd["id"]')
secret_id=$(json scratch 'd["secret"]["id"]')
call domain-key 201 -X POST "$base/admin/v1/instances/$scratch_id/domain-keys" "${admin[@]}" \
  --data-binary '{"domains":["shop.example.com"]}'
key_id=$(json domain-key 'd["id"]')
call scratch-experience 200 -X POST "$base/admin/v1/instances/$scratch_id/experiences/search/regenerate-token" \
  "${admin[@]}" --data-binary '{}'
experience_token_id=$(json scratch-experience 'd["token"]["id"]')

# The configuration and its dictionaries (libFuzzer format: one quoted value
# a line), in the temporary directory: they hold credentials.
mkdir "$tmp/config"
cp .ci/schemathesis.toml "$tmp/config/"
dict() {
  local name=$1
  shift
  printf '"%s"\n' "$@" >"$tmp/config/$name.dict"
}
dict instance "$instance_id"
dict scratch "$scratch_id"
dict secret "$secret"
dict secret_id "$secret_id"
dict key_id "$key_id"
dict experience_token_id "$experience_token_id"
dict product search
dict experience_token "$experience_token"
dict original_uri /prod/search/v1/search?q=a /search/autocomplete
dict access_token "$access_token"
dict api_key "$api_key"

# ------------------------------------------------------------------ run

export KB_ADMIN_TOKEN="$admin_token" KB_API_KEY="$api_key" KB_SECRET="$secret"

# With SCHEMATHESIS_REPORT_DIR, every request and response (HAR, credentials
# included) is kept there for a developer.
report_args=()
if [ -n "${SCHEMATHESIS_REPORT_DIR:-}" ]; then
  mkdir -p "$SCHEMATHESIS_REPORT_DIR"
  report_args=(--report har --report-dir "$SCHEMATHESIS_REPORT_DIR" --output-sanitize false)
fi
seed_args=()
[ "$seed" = random ] || seed_args=(--seed "$seed")

# run NAME SECONDS ACCESS_TOKEN ARGS...: one schemathesis run within SECONDS
# (its own budget; `timeout` stops it 60 s later whatever happens), output
# in $tmp/NAME.out; its exit status is in $status. One worker: with two,
# Python 3.11's parser can fail when two threads parse at once ("AST
# constructor recursion depth mismatch", seen here in hypothesis), which
# schemathesis reports as an error of the run.
status=0
run() {
  local name=$1 seconds=$2
  KB_ACCESS_TOKEN=$3
  export KB_ACCESS_TOKEN
  shift 3
  status=0
  # hypothesis keeps caches in .hypothesis/ of the working directory.
  HYPOTHESIS_STORAGE_DIRECTORY="$tmp/hypothesis" \
    timeout $((seconds + 60)) "$schemathesis" --config-file "$tmp/config/schemathesis.toml" \
    run openapi.yaml --url "$base" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
    --max-examples "$max_examples" --max-time "$seconds" "${seed_args[@]}" \
    --workers 1 --no-color "${report_args[@]}" "$@" >"$tmp/$name.out" 2>&1 || status=$?
  if [ "$status" -eq 124 ]; then
    echo "schemathesis.sh: $name: schemathesis did not stop within its time" >&2
  fi
}

# report NAME: its count of cases, the headlines of its warnings, and on
# failure what failed. schemathesis's own summary lines ("N passed, N failed
# in N s" and the like) are not shown: CI logs are read for the suite's
# total, which .ci/test.sh prints last.
report() {
  local name=$1 out="$tmp/$1.out" cases
  cases=$(sed -n '/^Test cases:/{n;p;}' "$out" | grep -o '^ *[0-9]* generated' | tr -dc 0-9 || true)
  echo "schemathesis.sh: $name: ${cases:-an unknown number of} cases, exit status $status"
  sed -n '/^=* WARNINGS =*$/,/^=* SUMMARY =*$/p' "$out" | grep '^[A-Z]' | grep -v '^=' | sed 's/^/  warning: /' || true
  ((status)) || return 0
  if grep -q '^=* \(FAILURES\|ERRORS\) =*$' "$out"; then
    sed -n '/^=* \(FAILURES\|ERRORS\) =*$/,/^=* \(WARNINGS\|SUMMARY\) =*$/p' "$out" |
      grep -v '^=* \(WARNINGS\|SUMMARY\) =*$\|^ *st replay ' | sed 's/^/  | /' || true
  else
    grep -v '^=.* in [0-9.]*s =*$' "$out" | tail -n 40 | sed 's/^/  | /' || true
  fi
}

echo "schemathesis.sh: schemathesis $("$schemathesis" --version | awk '{ print $NF }') against $base (seed $seed, $max_examples examples per operation and round)" >&2

# Two operations end sessions: /v1/revoke (the session of the token it is
# given) and an immediate signing-key rotation (every token issued until
# then). Every other operation runs first, with the main session's token;
# then those two, /v1/revoke with a session of its own.
enders=(--include-operation-id revoke --include-operation-id rotateSigningKey)
run contract "$seconds" "$access_token" --exclude-operation-id revoke \
  --exclude-operation-id rotateSigningKey
contract_status=$status
report contract
run enders 10 "$revoke_token" "${enders[@]}" --phases examples,coverage,fuzzing
enders_status=$status
report enders

if [ "$contract_status" -ne 0 ] || [ "$enders_status" -ne 0 ]; then
  die "the contract test failed (or schemathesis could not run); see above"
fi
echo "schemathesis.sh: openapi.yaml holds: every check passed"
