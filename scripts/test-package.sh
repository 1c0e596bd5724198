#!/usr/bin/env bash
# The Debian package as an operator gets it (docs/install.md), as root: build it, install it
# with apt, use what it installed, check the systemd unit and the pre-start step, then purge it
# and check that nothing it installed is left. Ends with "package: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
passed=0; failed=0
ok() { echo "  ok: $1"; passed=$((passed + 1)); }
bad() { echo "  FAILED: $1"; failed=$((failed + 1)); }
check() { # description, command...
  local what=$1; shift
  if out=$("$@" 2>&1); then ok "$what"; else bad "$what"; printf '%s\n' "$out" | tail -5 | sed 's/^/    /'; fi
}
purge() { DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq dsrlb >/dev/null 2>&1 || true; }
trap purge EXIT

echo "== Debian package"
purge # a package left by an earlier run would hide what this one installs
deb=$(scripts/package.sh | tail -1)
check "scripts/package.sh built $deb" test -s "$deb"
check "it depends on Debian's DPDK runtime, not -dev packages" \
  sh -c "dpkg-deb -f '$deb' Depends | grep -q 'librte-eal23' && ! dpkg-deb -f '$deb' Depends | grep -q -- '-dev'"
check "apt installs it" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb"
dpkg -L dsrlb | sort >/tmp/dsrlb-package-files
check "dsrlb --version names the git revision" sh -c "dsrlb --version | grep -q \"$(git rev-parse --short=12 HEAD)\""
for f in /etc/dsrlb/dsrlb.ron /usr/share/doc/dsrlb/examples/*.ron /usr/share/doc/dsrlb/fleet/instance.ron; do
  check "installed dsrlb check accepts $f" dsrlb check --config "$f"
done
check "the man pages render" sh -c 'zcat /usr/share/man/man1/dsrlb-run.1.gz | grep -q "^.TH" && ls /usr/share/man/man1/dsrlb-ctl-drain.1.gz'
check "bash completion loads and completes subcommands" bash -c '
  source /usr/share/bash-completion/completions/dsrlb
  COMP_WORDS=(dsrlb ctl dr); COMP_CWORD=2; _dsrlb dsrlb dr ctl
  [ "${COMPREPLY[*]}" = "drain drain-instance" ]'
check "every option and argument has help text" python3 -c '
import subprocess, sys
bare = []
for sub in (["run"], ["check"], ["replay"], ["completions"], ["ctl"], ["ctl", "drain"]):
    text = subprocess.run(["dsrlb", *sub, "-h"], capture_output=True, text=True, check=True).stdout
    for line in text.splitlines():
        if line.startswith("  ") and line.strip()[:1] in "-<[" and len(line.strip().split("  ")) < 2:
            bare.append(" ".join(sub) + ": " + line.strip())
print("\n".join(bare)); sys.exit(1 if bare else 0)'
check "systemd-analyze verify accepts the installed unit" \
  sh -c 'systemd-analyze verify --man=no /lib/systemd/system/dsrlb.service 2>&1 | tee /dev/stderr | { ! grep -q .; }'
check "the unit is installed disabled" sh -c '! systemctl is-enabled dsrlb 2>/dev/null | grep -qx enabled'
check "pre-start: a testbed configuration (vdevs) binds nothing and passes" \
  env DSRLB_CONFIG=/usr/share/doc/dsrlb/examples/testbed-one-arm.ron /usr/lib/dsrlb/dsrlb-prestart --dry-run
check "pre-start: the inline example's NICs are named, and missing here" sh -c \
  'out=$(DSRLB_CONFIG=/usr/share/doc/dsrlb/examples/nic-inline.ron DSRLB_HUGEPAGES=4G /usr/lib/dsrlb/dsrlb-prestart --dry-run 2>&1); echo "$out";
   echo "$out" | grep -q "would run: dpdk-hugepages.py --setup 4G" && echo "$out" | grep -q "no PCI device 0000:3b:00.0" && ! echo "$out" | grep -q "ready"'
printf '(\n  ports: [],\n)\n' >/tmp/dsrlb-bad.ron
check "pre-start: a bad configuration stops the start before anything changes" sh -c \
  '! DSRLB_CONFIG=/tmp/dsrlb-bad.ron DSRLB_HUGEPAGES=4G /usr/lib/dsrlb/dsrlb-prestart --dry-run >/tmp/dsrlb-prestart.out 2>&1 && ! grep -q "would run" /tmp/dsrlb-prestart.out'
rm -f /tmp/dsrlb-bad.ron /tmp/dsrlb-prestart.out

purge
left=$(while read -r f; do [ -e "$f" ] && [ ! -d "$f" ] && echo "$f"; done </tmp/dsrlb-package-files || true)
check "apt purge leaves none of its files" test -z "$left"
[ -n "$left" ] && printf '    left: %s\n' $left
check "apt purge removes /etc/dsrlb" test ! -e /etc/dsrlb
rm -f /tmp/dsrlb-package-files
echo "package: $passed passed, $failed failed"
[ "$failed" = 0 ]
