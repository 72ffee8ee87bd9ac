#!/usr/bin/env bash
# The load benchmark (docs/performance.md, "The benchmark"): one command, one table.
#
#   ./bench/run.sh                 full run: release build, 10 s per scenario
#   ./bench/run.sh --smoke         CI's short run: debug build, 2 s per scenario,
#                                  fails unless every scenario answered as expected
#   ./bench/run.sh --json FILE     also write the table as JSON
#   ./bench/run.sh --cluster       the store is a Redis Cluster of six nodes
#                                  (three primaries, three replicas) instead
#                                  of one redis-server
#
# It builds the broker and the bench examples, then starts, all on loopback
# and on free ports, in a temporary directory removed at exit:
#   - its own redis-server (no persistence);
#   - broker A on that Redis, one worker per core, log level warn, with rate
#     limiting on: every product allows 1,000,000 requests per minute per
#     session and IP (the maximum, never reached here) except `limited` (1);
#   - the baseline (bench/baseline.rs), the same actix-web with the same worker
#     count answering `200 ok`, whose rate is the machine's limit H;
#   - a fast product upstream (bench/upstream.rs) for the gateway;
#   - later, broker B on the same Redis, for propagation and seeding, and
#     broker C for limit_exactness.
# Each throughput scenario is driven by wrk with the same connections, threads
# and duration, after a short warm-up of its own. Every process started here
# is stopped on exit, whatever happens. The full run takes about 7 minutes
# after the build, and under 15 in any case: every step has a time limit
# (wrk's duration, the probes' deadlines, `timeout` around each).
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C # decimal points in printf and awk

usage() {
  echo "usage: $0 [--smoke] [--cluster] [--json FILE]" >&2
  exit 2
}

smoke=0
cluster=0
json_out=""
while (($#)); do
  case "$1" in
    --smoke) smoke=1 ;;
    --cluster) cluster=1 ;;
    --json)
      [ $# -ge 2 ] || usage
      json_out="$2"
      shift
      ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
  shift
done

cores=$(nproc)
connections=64 # the same for every throughput scenario, and for H
threads=2
# Token scenarios spread their load over this many sessions: the products'
# limit of 1,000,000 requests per minute counts per session (and IP), and
# a fast verify path on 2 cores could pass it from a single session.
sessions=16
if ((smoke)); then
  profile=debug
  duration=2           # seconds measured per throughput scenario
  warmup=1             # seconds of warm-up before each
  latency_seconds=2
  trials=20            # revocation propagation trials
  next_trials=20       # revocation_next_request trials
  exact_seconds=3      # limit_exactness: seconds inside one window
  exact_limit=600      # limit_exactness: one token's limit per minute
  seed_count=10000     # revoked tokens listed for `memory`
  count_status=1       # exact status tallies (slower wrk, exact checks)
else
  profile=release
  duration=10
  warmup=2
  latency_seconds=15
  trials=200
  next_trials=500
  exact_seconds=0      # a full minute window
  exact_limit=6000
  seed_count=1000000
  count_status=0
fi

# ------------------------------------------------------------------ tools

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v curl >/dev/null 2>&1 || need+=(curl)
if ((${#need[@]})); then
  ./.ci/install-packages.sh "${need[@]}"
fi

if ((smoke)); then
  cargo build --locked --bin keybroker --examples
else
  cargo build --locked --release --bin keybroker --examples
fi
bin="${CARGO_TARGET_DIR:-target}/$profile"
probe="$bin/examples/bench-probe"
started_at=$(date +%s)

# ------------------------------------------------------------------ processes

tmp=$(mktemp -d "${TMPDIR:-/tmp}/keybroker-bench.XXXXXX")
pids=()

# shellcheck source=bench/servers.sh
. bench/servers.sh

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_pids
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
  echo "bench: $*" >&2
  exit 1
}

run_secrets "$bin/keybroker"
if ((cluster)); then
  start_cluster
  store_env=(KEYBROKER_REDIS_CLUSTER_NODES="$cluster_nodes")
else
  start_redis
  store_env=(KEYBROKER_REDIS_URL="redis://127.0.0.1:$redis_port/")
fi

free_port
port_a=$picked
base_a="http://127.0.0.1:$port_a"

# start_broker NAME PORT WORKERS: a broker on the shared Redis. Every broker
# gets A's public URL: it is the tokens' issuer, which replicas must share.
start_broker() {
  local name=$1 port=$2 workers=$3
  env -u RUST_LOG \
    KEYBROKER_LISTEN="127.0.0.1:$port" \
    KEYBROKER_PUBLIC_BASE_URL="$base_a" \
    KEYBROKER_WORKERS="$workers" \
    "${store_env[@]}" \
    KEYBROKER_SIGNING_KEY_FILE="$tmp/signing.pem" \
    KEYBROKER_ADMIN_TOKEN="$admin_token" \
    KEYBROKER_PEPPER="$pepper" \
    KEYBROKER_KEY_ENCRYPTION_KEY="$key_encryption_key" \
    KEYBROKER_LOG_LEVEL=warn \
    "$bin/keybroker" serve >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  wait_ready "$name" "$!" "http://127.0.0.1:$port/readyz"
}

start_broker broker-a "$port_a" "$cores"
broker_a_pid=${pids[-1]}

free_port
port_h=$picked
"$bin/examples/baseline" --workers "$cores" --listen "127.0.0.1:$port_h" >"$tmp/baseline.log" 2>&1 &
pids+=($!)
wait_ready baseline "$!" "http://127.0.0.1:$port_h/"

free_port
port_up=$picked
"$bin/examples/bench-upstream" --workers 1 --listen "127.0.0.1:$port_up" >"$tmp/upstream.log" 2>&1 &
pids+=($!)
wait_ready upstream "$!" "http://127.0.0.1:$port_up/"

# One instance, one product per scenario, so that no scenario's rate-limit
# counters (per product, session and IP, per minute) carry over into another,
# and $sessions tokens, each its own session.
export BENCH_ADMIN_TOKEN="$admin_token"
timeout 30 "$probe" setup --base "$base_a" --upstream "http://127.0.0.1:$port_up/search" \
  --product verify=1000000 --product gateway=1000000 --product latency=1000000 \
  --product propagation=1000000 --product memory=1000000 --product limited=1 \
  --product exact=$exact_limit \
  --tokens "$sessions" >"$tmp/setup.env" || die "could not create the benchmark instance"
instance="" api_key="" secret="" token="" tokens=""
while IFS='=' read -r name value; do
  case "$name" in
    INSTANCE) instance=$value ;;
    API_KEY) api_key=$value ;;
    SECRET) secret=$value ;;
    TOKEN) token=$value ;;
    TOKENS) tokens=$value ;;
  esac
done <"$tmp/setup.env"
if [ -z "$instance" ] || [ -z "$api_key" ] || [ -z "$secret" ] || [ -z "$token" ] || [ -z "$tokens" ]; then
  die "setup printed no credentials"
fi

# ------------------------------------------------------------------ results

# Rows of the table: scenario|req/s|p50 ms|p99 ms|ratio to H|note, and the
# names of the scenarios that did not answer as expected.
rows=()
failed=()
hello_rps=""

# field FILE NAME: a top-level value of a flat JSON object.
field() {
  [ -f "$1" ] || return 0
  sed -n "s/.*\"$2\":\\(\"[^\"]*\"\\|[^,}]*\\).*/\\1/p" "$1" | head -n 1 | tr -d '"'
}

ratio() {
  if [ -n "$hello_rps" ] && [ "$1" != - ]; then
    awk -v a="$1" -v h="$hello_rps" 'BEGIN { if (h > 0) printf "%.2f", a / h; else print "-" }'
  else
    echo -
  fi
}

# add_row SCENARIO RPS P50 P99 NOTE
add_row() {
  local rps=$2 p50=$3 p99=$4
  [ "$rps" = - ] || rps=$(printf '%.0f' "$rps")
  [ "$p50" = - ] || p50=$(printf '%.3f' "$p50")
  [ "$p99" = - ] || p99=$(printf '%.3f' "$p99")
  rows+=("$1|$rps|$p50|$p99|$(ratio "$2")|$5")
}

fail() {
  echo "bench: $1: $2" >&2
  failed+=("$1")
}

# check_status SCENARIO EXPECTED METHOD URL BODY HEADER...: one request with
# curl first, so that a wrong answer is shown with its body.
check_status() {
  local scenario=$1 expected=$2 method=$3 url=$4 body=$5 status
  shift 5
  local args=(-s -o "$tmp/$scenario.check" -w '%{http_code}' -X "$method")
  local h
  for h in "$@"; do args+=(-H "$h"); done
  [ -z "$body" ] || args+=(--data-binary "$body")
  # A limit of one per minute lets the window's first request through.
  [ "$expected" != 429 ] || curl "${args[@]}" "$url" >/dev/null || true
  status=$(curl "${args[@]}" "$url" || true)
  if [ "$status" != "$expected" ]; then
    fail "$scenario" "expected $expected, got $status: $(head -c 300 "$tmp/$scenario.check")"
    return 1
  fi
}

# run_wrk SCENARIO SECONDS METHOD URL BODY HEADER...: writes $tmp/SCENARIO.json.
run_wrk() {
  local scenario=$1 seconds=$2 method=$3 url=$4 body=$5
  shift 5
  local headers
  headers=$(printf '%s\n' "$@")
  KB_METHOD="$method" KB_BODY="$body" KB_HEADERS="$headers" KB_TOKENS="$rotate" \
    KB_COUNT_STATUS="$count_status" KB_RESULT="$tmp/$scenario.json" \
    timeout $((seconds + 30)) wrk -t "$threads" -c "$connections" -d "${seconds}s" \
    -s bench/wrk/scenario.lua "$url" >"$tmp/$scenario.wrk" 2>&1
}

# throughput SCENARIO EXPECTED METHOD URL BODY HEADER...: a warm-up, then the
# measured run; checks that every answer had the expected status.
throughput() {
  local scenario=$1 expected=$2 method=$3 url=$4 body=$5
  shift 5
  echo "== $scenario" >&2
  check_status "$scenario" "$expected" "$method" "$url" "$body" "$@" || {
    add_row "$scenario" - - - "FAILED (see above)"
    return 0
  }
  run_wrk "$scenario.warmup" "$warmup" "$method" "$url" "$body" "$@" ||
    fail "$scenario" "wrk failed: $(tail -n 3 "$tmp/$scenario.warmup.wrk")"
  if ! run_wrk "$scenario" "$duration" "$method" "$url" "$body" "$@" || [ ! -s "$tmp/$scenario.json" ]; then
    fail "$scenario" "wrk failed: $(tail -n 3 "$tmp/$scenario.wrk")"
    add_row "$scenario" - - - "FAILED (wrk)"
    return 0
  fi
  local r="$tmp/$scenario.json" requests non2xx socket statuses note=""
  requests=$(field "$r" requests)
  non2xx=$(field "$r" non2xx)
  statuses=$(field "$r" statuses)
  socket=$(($(field "$r" connect_errors) + $(field "$r" read_errors) + $(field "$r" write_errors) + $(field "$r" timeouts)))
  if [ "$requests" -eq 0 ]; then
    fail "$scenario" "no request completed"
  elif [ "$expected" = 429 ]; then
    # The first request of each minute window passes; everything else must
    # be refused, and (when tallied) refused with 429.
    if [ "$((requests - non2xx))" -gt 3 ]; then
      fail "$scenario" "$((requests - non2xx)) of $requests requests were not refused"
    fi
    if [ -n "$statuses" ] && [ "$(tr ' ' '\n' <<<"$statuses" | grep -cv '^\(429\|200\):')" -ne 0 ]; then
      fail "$scenario" "unexpected statuses: $statuses"
    fi
    check_status "$scenario" 429 "$method" "$url" "$body" "$@" || true
  else
    if [ "$non2xx" -ne 0 ]; then
      fail "$scenario" "$non2xx of $requests answers were not 2xx (statuses: ${statuses:-not tallied})"
    fi
    if [ -n "$statuses" ] && [ "$statuses" != "$expected:$requests" ]; then
      fail "$scenario" "expected only $expected, got: $statuses"
    fi
  fi
  if [ "$socket" -ne 0 ]; then
    fail "$scenario" "$socket socket errors or timeouts"
    note="$socket socket errors"
  fi
  case " ${failed[*]} " in *" $scenario "*) note="FAILED${note:+, $note}" ;; esac
  # H, the denominator of every ratio, is the first scenario's rate.
  [ "$scenario" != hello ] || hello_rps=$(field "$r" rps)
  add_row "$scenario" "$(field "$r" rps)" "$(field "$r" p50_ms)" "$(field "$r" p99_ms)" "$note"
}

# ------------------------------------------------------------------ scenarios

key_header="x-inbenta-key: $api_key"
bearer="Authorization: Bearer $token"
# Tokens wrk sends in turn (see bench/wrk/scenario.lua); empty: the request's
# own headers only.
rotate=""
verify_for() { echo "X-Original-URI: /prod/$1/v1/search"; }

# hello: the baseline H, the machine's own limit for actix-web under wrk.
throughput hello 200 GET "http://127.0.0.1:$port_h/" ""

# auth_secret: POST /v1/auth with the secret: API-key lookup, keyed hash of
# the secret, constant-time check, a new session and an Ed25519 signature.
throughput auth_secret 200 POST "$base_a/v1/auth" "{\"secret\":\"$secret\"}" \
  "$key_header" "Content-Type: application/json"

# refresh: POST /v1/refreshToken with the $sessions tokens in turn. Within
# the refresh reuse window (10 s by default) the same presented token gets the
# same successor, so after each token's first request this is the broker's
# legitimate cached path: token verification, revocation and credential
# checks, the successor lookup and an Ed25519 signature of the kept
# successor. It is measured as clients would hit it; a fresh token per request
# is not possible at this rate (each would need a session from /v1/auth).
#
# From here on, requests with a bearer token use the $sessions tokens in turn.
rotate=$tokens
throughput refresh 200 POST "$base_a/v1/refreshToken" "" "$key_header" "$bearer"

# verify: GET /v1/verify (forward auth) with valid tokens: every gateway
# check, revocation lists and the rate limit included, no upstream.
throughput verify 200 GET "$base_a/v1/verify" "" "$key_header" "$bearer" "$(verify_for verify)"
verify_rps=$(field "$tmp/verify.json" rps)

# gateway: GET /prod/<product>/v1/search, the same checks, then proxied to
# the local upstream (which shares the machine's cores).
throughput gateway 200 GET "$base_a/prod/gateway/v1/search" "" "$key_header" "$bearer"

# rate_limited: the 429 path, the verify request on a product allowing one
# request per minute, from one session: every check runs, then the limit
# refuses.
rotate=""
throughput rate_limited 429 GET "$base_a/v1/verify" "" "$key_header" "$bearer" "$(verify_for limited)"

# latency: verify at a fixed rate of half of verify's measured maximum, open
# loop, with latency counted from each request's scheduled send time
# (coordinated omission corrected): p50, p99, p99.9.
echo "== latency" >&2
if [ -n "${verify_rps:-}" ] && [ "${verify_rps%.*}" -gt 1 ]; then
  rate=$(awk -v v="$verify_rps" 'BEGIN { printf "%d", v / 2 }')
  if BENCH_TOKENS="$tokens" timeout $((latency_seconds + 60)) "$probe" latency \
    --url "$base_a/v1/verify" --rotate-tokens \
    --header "$key_header" --header "$(verify_for latency)" \
    --rate "$rate" --duration "$latency_seconds" --warmup "$warmup" \
    --connections "$connections" --expect 200 >"$tmp/latency.json"; then
    r="$tmp/latency.json"
    if [ "$(field "$r" ok)" -eq 0 ] || [ "$(field "$r" unexpected)" -ne 0 ] || [ "$(field "$r" failures)" -ne 0 ]; then
      fail latency "expected only 200: $(cat "$r")"
    fi
    note="target $rate req/s, p99.9 $(field "$r" p999_ms) ms, max $(field "$r" max_ms) ms"
    # The same open-loop load on the baseline: the floor that the machine,
    # sharing its cores between server and probe, puts under any p99 here.
    if timeout $((latency_seconds + 60)) "$probe" latency --url "http://127.0.0.1:$port_h/" \
      --rate "$rate" --duration "$latency_seconds" --warmup "$warmup" \
      --connections "$connections" --expect 200 >"$tmp/latency-hello.json"; then
      h="$tmp/latency-hello.json"
      note+="; H at that rate: p50 $(field "$h" p50_ms), p99 $(field "$h" p99_ms), p99.9 $(field "$h" p999_ms) ms"
    fi
    case " ${failed[*]} " in *" latency "*) note="FAILED, $note" ;; esac
    add_row latency "$(field "$r" achieved_rps)" "$(field "$r" p50_ms)" "$(field "$r" p99_ms)" "$note"
  else
    fail latency "bench-probe latency failed"
    add_row latency - - - "FAILED (probe)"
  fi
else
  fail latency "no verify rate to derive the fixed rate from"
  add_row latency - - - "FAILED (no verify rate)"
fi

# revocation_propagation: a second broker process B on the same Redis. Each
# trial gets a fresh token from A, checks that B accepts it, revokes it
# through A's admin API, then polls B back to back: the delay runs from A's
# revoke response to B's first 401 token_revoked (an upper bound: it
# includes that last poll's round trip).
free_port
port_b=$picked
start_broker broker-b "$port_b" "$cores"
base_b="http://127.0.0.1:$port_b"

# propagation SCENARIO VIA: the trials against B's /v1/verify or
# /v1/introspect; writes $tmp/SCENARIO.json and adds the row.
propagation() {
  local scenario=$1 via=$2 r="$tmp/$1.json" note
  echo "== $scenario" >&2
  if ! BENCH_API_KEY="$api_key" BENCH_SECRET="$secret" timeout 120 "$probe" propagation \
    --a "$base_a" --b "$base_b" --instance "$instance" --product propagation \
    --trials "$trials" --via "$via" >"$r"; then
    fail "$scenario" "bench-probe propagation --via $via failed"
    add_row "$scenario" - - - "FAILED (probe)"
    return 0
  fi
  if [ "$(field "$r" measured)" -ne "$trials" ] || [ "$(field "$r" failures)" -ne 0 ]; then
    fail "$scenario" "$(cat "$r")"
  fi
  note="max $(field "$r" max_ms) ms, $(field "$r" measured)/$trials trials, $(field "$r" refused_at_first_poll) refused at the first poll"
  case " ${failed[*]} " in *" $scenario "*) note="FAILED, $note" ;; esac
  add_row "$scenario" - "$(field "$r" p50_ms)" "$(field "$r" p99_ms)" "$note"
}
propagation revocation_propagation verify

# propagation_introspect: the same trials, polling B's /v1/introspect, which
# answers from B's local revocation view (kept current by Redis pub/sub)
# instead of reading Redis: the delay of the feed itself.
propagation propagation_introspect introspect

# revocation_next_request: each trial warms a fresh token on B (its
# revocation state and a lease held in B's memory), revokes it through A,
# and sends one request to B as soon as A answers: it must be refused.
echo "== revocation_next_request" >&2
r="$tmp/revocation_next_request.json"
if BENCH_API_KEY="$api_key" BENCH_SECRET="$secret" timeout 300 "$probe" propagation \
  --a "$base_a" --b "$base_b" --instance "$instance" --product propagation \
  --trials "$next_trials" --via verify >"$r"; then
  refused=$(field "$r" refused_at_first_poll)
  note="$refused/$next_trials refused on the first request after the answer"
  if [ "$refused" -ne "$next_trials" ]; then
    fail revocation_next_request "$(cat "$r")"
    note="FAILED, $note"
  fi
  add_row revocation_next_request - - - "$note"
else
  fail revocation_next_request "bench-probe propagation failed"
  add_row revocation_next_request - - - "FAILED (probe)"
fi

# limit_exactness: a third broker C; A, B and C send one token's requests
# as fast as they can for one minute window (--smoke: a few seconds) on a
# product allowing $exact_limit per minute. Allowed must be within
# [0.98 x limit, limit], never above.
free_port
port_c=$picked
start_broker broker-c "$port_c" "$cores"
echo "== limit_exactness" >&2
r="$tmp/limit_exactness.json"
if BENCH_API_KEY="$api_key" BENCH_TOKEN="$token" timeout 150 "$probe" exactness \
  --base "$base_a" --base "$base_b" --base "http://127.0.0.1:$port_c" --product exact \
  --seconds "$exact_seconds" >"$r"; then
  allowed=$(field "$r" allowed)
  note="$allowed allowed of $exact_limit, $(field "$r" refused) refused, $(field "$r" other) other, $(field "$r" seconds) s"
  if [ "$allowed" -gt "$exact_limit" ] || [ $((allowed * 100)) -lt $((exact_limit * 98)) ] ||
    [ "$(field "$r" other)" -ne 0 ] || [ "$(field "$r" same_window)" != true ]; then
    fail limit_exactness "$(cat "$r")"
    note="FAILED, $note"
  fi
  add_row limit_exactness - - - "$note"
else
  fail limit_exactness "bench-probe exactness failed"
  add_row limit_exactness - - - "FAILED (probe)"
fi

# memory: peak RSS of broker A during a verify run with $seed_count revoked
# tokens listed. They are revoked through B's admin API (random jti values,
# as an operator would), so that A learns of them only as a replica does.
# A's peak-RSS mark is reset (clear_refs) after the seeding, so VmHWM is the
# peak during the verify run itself, with the lists in place.
echo "== memory (revoking $seed_count tokens)" >&2
if timeout 450 "$probe" seed-revocations --api "$base_b" --instance "$instance" \
  --count "$seed_count" --concurrency "$connections" --max-seconds 420 >"$tmp/seed.json"; then
  written=$(field "$tmp/seed.json" written)
  echo "   $written revoked in $(field "$tmp/seed.json" seconds) s" >&2
  [ "$written" -eq "$seed_count" ] || fail memory "only $written of $seed_count revocations were written: $(cat "$tmp/seed.json")"
else
  written=0
  fail memory "seeding the revocations failed"
fi
hwm_note="peak since start"
if echo 5 >"/proc/$broker_a_pid/clear_refs" 2>/dev/null; then
  hwm_note="peak during the run"
fi
rotate=$tokens
throughput memory 200 GET "$base_a/v1/verify" "" "$key_header" "$bearer" "$(verify_for memory)"
hwm_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$broker_a_pid/status")
rss_mib=$(awk -v k="$hwm_kb" 'BEGIN { printf "%.1f", k / 1024 }')
# used_memory of the one server, or summed over the cluster's primaries.
redis_bytes=0
for port in ${cluster_ports[@]+"${cluster_ports[@]}"} ${redis_port:-}; do
  [ "$(redis-cli -p "$port" role 2>/dev/null | head -n 1)" = master ] || continue
  bytes=$(redis-cli -p "$port" info memory 2>/dev/null | tr -d '\r' | sed -n 's/^used_memory://p')
  redis_bytes=$((redis_bytes + ${bytes:-0}))
done
redis_mem=$(awk -v b="$redis_bytes" 'BEGIN { printf "%.1fM", b / 1048576 }')
last=$((${#rows[@]} - 1))
note=${rows[last]##*|}
rows[last]="${rows[last]%|*}|VmHWM $rss_mib MiB ($hwm_note), $written revoked, redis $redis_mem${note:+; $note}"

# ------------------------------------------------------------------ report

elapsed=$(($(date +%s) - started_at))
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || commit+="+dirty"
mode=full
((smoke)) && mode="smoke ($profile build)"
((cluster)) && mode+=", Redis Cluster of 3 primaries + 3 replicas"

{
  echo
  echo "keybroker benchmark, $mode: $cores cores, wrk $threads threads x $connections connections, ${duration} s per scenario, commit $commit, $elapsed s"
  echo
  printf '%-24s %10s %9s %9s %7s  %s\n' scenario req/s "p50 ms" "p99 ms" "x H" note
  for row in "${rows[@]}"; do
    IFS='|' read -r s rps p50 p99 ratio note <<<"$row"
    printf '%-24s %10s %9s %9s %7s  %s\n' "$s" "$rps" "$p50" "$p99" "$ratio" "$note"
  done
}

if [ -n "$json_out" ]; then
  {
    printf '{"mode":"%s","cores":%s,"connections":%s,"threads":%s,"duration_s":%s,"commit":"%s","elapsed_s":%s,"scenarios":[' \
      "${mode%% *}" "$cores" "$connections" "$threads" "$duration" "$commit" "$elapsed"
    sep=""
    num() { if [ "$1" = - ]; then echo null; else echo "$1"; fi; }
    for row in "${rows[@]}"; do
      IFS='|' read -r s rps p50 p99 ratio note <<<"$row"
      printf '%s{"scenario":"%s","rps":%s,"p50_ms":%s,"p99_ms":%s,"ratio_to_h":%s,"note":"%s"}' \
        "$sep" "$s" "$(num "$rps")" "$(num "$p50")" "$(num "$p99")" "$(num "$ratio")" "${note//\"/}"
      sep=","
    done
    printf '],"extra":{"latency":%s,"latency_hello":%s,"revocation_propagation":%s,"propagation_introspect":%s,"revocation_next_request":%s,"limit_exactness":%s,"seed":%s},"failed":[' \
      "$(cat "$tmp/latency.json" 2>/dev/null || echo null)" \
      "$(cat "$tmp/latency-hello.json" 2>/dev/null || echo null)" \
      "$(cat "$tmp/revocation_propagation.json" 2>/dev/null || echo null)" \
      "$(cat "$tmp/propagation_introspect.json" 2>/dev/null || echo null)" \
      "$(cat "$tmp/revocation_next_request.json" 2>/dev/null || echo null)" \
      "$(cat "$tmp/limit_exactness.json" 2>/dev/null || echo null)" \
      "$(cat "$tmp/seed.json" 2>/dev/null || echo null)"
    sep=""
    for s in "${failed[@]}"; do
      printf '%s"%s"' "$sep" "$s"
      sep=","
    done
    printf ']}\n'
  } >"$json_out"
  echo "JSON written to $json_out"
fi

if ((${#failed[@]})); then
  echo "bench: FAILED: $(printf '%s\n' "${failed[@]}" | sort -u | tr '\n' ' ')" >&2
  exit 1
fi
