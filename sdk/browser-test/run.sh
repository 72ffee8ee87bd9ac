#!/usr/bin/env bash
# The SDK's browser tests (docs/sdk.md#tests): Debian's Chromium, driven by
# playwright-core, against a real broker on its own redis-server. Every
# process is started by harness.mjs on free loopback ports and stopped at the
# end. Needs chromium, node and npm (.ci/test.sh installs them) and the debug
# broker binary, built here when missing.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
bin="${CARGO_TARGET_DIR:-$root/target}/debug/keybroker"
if [ ! -x "$bin" ]; then
  (cd "$root" && cargo build --locked --bin keybroker)
fi
# Exactly the locked playwright-core (a second or two); it brings no browser
# of its own.
npm ci --no-audit --no-fund --loglevel=error
exec node --test --test-reporter=tap --test-concurrency=1 .
