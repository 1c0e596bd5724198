#!/usr/bin/env bash
# The project's test command (README, CI), as root: set up the machine if needed, then check
# formatting and lints, run every test — unit and property tests, DPDK vdev tests, end-to-end
# tests with real kernels in network namespaces — and short smoke runs of the benchmarks
# (that they work, not how fast). Ends with one line: "tests: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
LOG=$(mktemp /tmp/dsrlb-test.XXXXXX)
trap 'rm -f "$LOG"' EXIT

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet --features control/fault-injection -- -D warnings

status=0
# --no-fail-fast: one failing test binary must not hide whether the others pass. The
# fault-injection feature lets the end-to-end tests make a worker fail on purpose.
cargo test --workspace --release --no-fail-fast --features control/fault-injection 2>&1 | tee "$LOG" || status=$?
# EAL leaves the vdev test's runtime directory (its telemetry socket) behind.
rm -rf /var/run/dpdk/dsrlb-vdev

echo "== benchmark smoke runs"
cargo bench -q -p dataplane --bench pipeline -- --quick || status=1
scripts/bench.sh --smoke --out /tmp/dsrlb-bench-smoke || status=1
scripts/bench.sh --smoke --ipv6 --out /tmp/dsrlb-bench-smoke6 || status=1
scripts/bench-health.sh --smoke || status=1
scripts/latency.sh --smoke || status=1

echo "== the Debian package"
scripts/test-package.sh 2>&1 | tee -a "$LOG" || status=1

# One summary over cargo's per-binary lines and our harnesses' "N passed, M failed" lines.
python3 - "$LOG" "$status" <<'PY'
import re, sys
passed = failed = 0
for line in open(sys.argv[1]):
    m = re.search(r"test result: \w+\. (\d+) passed; (\d+) failed", line) or re.search(r"^(?:\w+: )?(\d+) passed, (\d+) failed", line)
    if m:
        passed += int(m.group(1)); failed += int(m.group(2))
if sys.argv[2] != "0" and failed == 0:
    failed = 1
print(f"tests: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
