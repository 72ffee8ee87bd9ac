#!/usr/bin/env bash
# The one test command (README): installs what is missing on a fresh Debian
# machine, then runs formatting and lint checks and every test.
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
./bench/run.sh --smoke
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;/) p += $(i - 1); if ($i ~ /^failed;/) f += $(i - 1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$test_log"
