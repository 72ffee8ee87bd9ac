# Shared by bench/run.sh and .ci/schemathesis.sh, which source it after
# setting `tmp` (their temporary directory) and `pids` (what their exit trap
# stops); `die` is theirs too.

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

# start_cluster: a Redis Cluster of six redis-servers without persistence
# (three primaries, one replica each) on free ports, in `tmp`; sets
# `cluster_nodes` (the seed list, comma-separated redis:// URLs) and
# `cluster_ports`. Returns once every slot is served and every replica linked.
start_cluster() {
  local port addresses=()
  cluster_ports=()
  cluster_nodes=""
  for i in 1 2 3 4 5 6; do
    free_port
    port=$picked
    mkdir "$tmp/cluster-$i"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
      --cluster-enabled yes --cluster-node-timeout 2000 --cluster-require-full-coverage no \
      --cluster-config-file "$tmp/cluster-$i/nodes.conf" \
      --dir "$tmp/cluster-$i" >"$tmp/cluster-$i.log" 2>&1 &
    pids+=($!)
    cluster_ports+=("$port")
    addresses+=("127.0.0.1:$port")
    cluster_nodes+="${cluster_nodes:+,}redis://127.0.0.1:$port"
  done
  for port in "${cluster_ports[@]}"; do
    for _ in $(seq 100); do
      [ "$(redis-cli -p "$port" ping 2>/dev/null || true)" = PONG ] && break
      sleep 0.1
    done
  done
  redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes \
    >"$tmp/cluster-create.log" 2>&1 || die "redis-cli --cluster create failed: $(tail -n 5 "$tmp/cluster-create.log")"
  for port in "${cluster_ports[@]}"; do
    for _ in $(seq 200); do
      redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && break
      sleep 0.1
    done
    redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' ||
      die "the cluster node on port $port did not reach cluster_state:ok"
  done
  # Durable writes wait for a replica (WAIT 1): every replica must be linked.
  for port in "${cluster_ports[@]}"; do
    for _ in $(seq 200); do
      redis-cli -p "$port" info replication 2>/dev/null |
        grep -Eq '^(connected_slaves:1|master_link_status:up)' && break
      sleep 0.1
    done
    redis-cli -p "$port" info replication 2>/dev/null |
      grep -Eq '^(connected_slaves:1|master_link_status:up)' ||
      die "the cluster node on port $port has no linked replica or primary"
  done
}

# stop_pids: every process in `pids`, politely, then for sure: SIGTERM to
# all, up to 5 s each to exit, then SIGKILL. For the exit traps.
stop_pids() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
