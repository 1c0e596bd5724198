#!/usr/bin/env bash
# Build the Debian package (docs/install.md): the release binary, its man pages and shell
# completions generated from the same command-line definitions, then cargo-deb.
#
#   scripts/package.sh          -> target/debian/dsrlb_<version>-1_amd64.deb (path printed last)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
fi
cargo build --release -q -p control --bin dsrlb
GEN=target/dsrlb-generated
rm -rf "$GEN"; mkdir -p "$GEN/man"
target/release/dsrlb man --out "$GEN/man" >/dev/null
target/release/dsrlb completions bash >"$GEN/dsrlb.bash"
target/release/dsrlb completions zsh >"$GEN/_dsrlb"
target/release/dsrlb completions fish >"$GEN/dsrlb.fish"
# --no-build: the binary above is the one packaged (cargo-deb would build it again the same way).
deb=$(cargo deb -p control --no-build --quiet 2>&1 | tail -1)
[ -f "$deb" ] || { echo "cargo deb did not produce a package: $deb" >&2; exit 1; }
echo "$deb"
