#!/usr/bin/env bash
# The one test command (README): installs what is missing on a fresh Debian
# machine, then runs formatting and lint checks, every test (the SDK's too),
# the benchmark's smoke run and the contract test (.ci/schemathesis.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# nginx, for the auth_request integration test (it also looks in /usr/sbin,
# which is not on every user's PATH). nginx-light where the release still has
# it (on bookworm a transitional package for nginx), else nginx; both have the
# auth_request module.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if apt-cache policy nginx-light 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null; then
    need+=(nginx-light)
  else
    need+=(nginx)
  fi
fi
# Chromium, Node.js and npm for the SDK's unit and browser tests (sdk/).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# Python 3 with venv and pip, for the contract test's schemathesis.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need+=(python3 python3-venv)
fi
if ((${#need[@]})); then
  ./.ci/install-packages.sh "${need[@]}"
fi
for component in rustfmt clippy; do
  cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 || rustup component add "$component"
done

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
cargo test --all-targets --locked 2>&1 | tee "$test_log"
# The SDK: unit tests on a fake clock, then Chromium against a real broker.
node --test --test-reporter=tap sdk/test/ 2>&1 | tee -a "$test_log"
./sdk/browser-test/run.sh 2>&1 | tee -a "$test_log"
./bench/run.sh --smoke
# The contract test (openapi.yaml against a live broker on Redis) counts as
# one test in the closing line; its failure fails the suite after that line.
contract=passed
./.ci/schemathesis.sh || contract=failed
# One closing line for the whole suite (cargo prints one per test binary;
# node's TAP reporter closes each run with `# pass N` and `# fail N`).
awk -v contract="$contract" '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;/) p += $(i - 1); if ($i ~ /^failed;/) f += $(i - 1) } }
  /^# pass [0-9]+$/ { p += $3 }
  /^# fail [0-9]+$/ { f += $3 }
  END { if (contract == "passed") p++; else f++; printf "tests: %d passed, %d failed\n", p, f }' "$test_log"
[ "$contract" = passed ]
