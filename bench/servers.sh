# Shared by bench/run.sh and .ci/schemathesis.sh, which source it after
# setting `tmp` (their temporary directory), `pids` (what their exit trap
# stops) and `die`.

# Below the ephemeral range, so that no client connection (wrk opens
# hundreds) can take the port between the check and the bind.
# free_port: sets `picked` to a port nothing listens on, not handed out before.
taken_ports=" "
picked=""
free_port() {
  local port
  while true; do
    port=$((10000 + RANDOM % 20000))
    case "$taken_ports" in *" $port "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      taken_ports+="$port "
      picked=$port
      return
    fi
  done
}

# wait_ready NAME PID URL: until URL answers 200, or fail with NAME's log.
wait_ready() {
  local name=$1 pid=$2 url=$3
  for _ in $(seq 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$tmp/$name.log" >&2 || true
      die "$name exited during startup"
    fi
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)" = 200 ]; then
      return
    fi
    sleep 0.1
  done
  tail -n 20 "$tmp/$name.log" >&2 || true
  die "$name did not become ready at $url"
}

random_secret() {
  head -c 48 /dev/urandom | base64 | tr -d '\n/+='
}

# run_secrets KEYBROKER_BINARY: the admin token, pepper, key-encryption key
# and signing key of this run only, never written outside `tmp`.
run_secrets() {
  admin_token=$(random_secret)
  pepper=$(random_secret)
  key_encryption_key=$(head -c 32 /dev/urandom | base64)
  "$1" generate-key >"$tmp/signing.pem"
  chmod 600 "$tmp/signing.pem"
}

# start_redis: a redis-server without persistence on a free port, in `tmp`;
# sets `redis_port`.
start_redis() {
  free_port
  redis_port=$picked
  mkdir "$tmp/redis"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$tmp/redis" >"$tmp/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    [ "$(redis-cli -p "$redis_port" ping 2>/dev/null || true)" = PONG ] && break
    sleep 0.1
  done
  [ "$(redis-cli -p "$redis_port" ping 2>/dev/null || true)" = PONG ] || die "redis-server did not start"
}
