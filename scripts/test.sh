#!/usr/bin/env bash
# The project's test command (README, CI): set up the machine if needed, then check formatting,
# lints, and run every test, including the ones that move real packets through DPDK vdevs and
# real kernels in network namespaces (these need root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --release
