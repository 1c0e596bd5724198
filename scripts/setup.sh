#!/usr/bin/env bash
# Prepare a Debian 12 machine (as root) for building, testing and demoing dsrlb.
# Idempotent: installs only the packages that are missing, so a second run is a no-op.
set -euo pipefail

# Everything the build (bindgen needs libclang, DPDK via pkg-config), the tests
# (namespaces, nftables, captures, BIRD for the fleet) and the demo/benchmarks (testpmd, curl) use.
PACKAGES=(
  build-essential pkg-config clang libclang-dev
  dpdk dpdk-dev libdpdk-dev
  iproute2 nftables ethtool tcpdump curl iputils-ping iputils-arping socat procps
  python3 bird2
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup.sh: all system packages present"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup.sh: cargo not found; install a Rust toolchain (rustup) first" >&2
  exit 1
fi

# dpdk-testpmd is the ceiling our benchmarks compare against; the package names it this way.
command -v dpdk-testpmd >/dev/null || { echo "setup.sh: dpdk-testpmd missing after install" >&2; exit 1; }
pkg-config --atleast-version=22.11 libdpdk || { echo "setup.sh: libdpdk >= 22.11 not found by pkg-config" >&2; exit 1; }
echo "setup.sh: ready (DPDK $(pkg-config --modversion libdpdk))"
