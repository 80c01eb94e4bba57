#!/usr/bin/env bash
# sgerun's takeover benchmark on the real-SGE lab, in one command:
#
#   sudo bench/takeover.sh [flags, e.g. -rounds 5, -scenarios seed-cut,takeover-cut, -quick]
#
# Installs the lab's Debian packages with .ci/install-deps when Grid Engine
# or sshd is missing, then runs go run ./bench/cmd/takeover, which builds
# sgerun, runs every scenario on a fresh lab per round (network namespaces,
# removed afterwards, also on failure or Ctrl-C), writes every sample to a
# JSON file and updates the takeover block of docs/performance.md. Needs
# root. A full run (5 rounds of 8 scenarios) takes about 2 hours.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

if [[ $(id -u) -ne 0 ]]; then
	echo "bench/takeover.sh: must run as root" >&2
	exit 1
fi

for f in /usr/lib/gridengine/sge_qmaster /usr/lib/gridengine/sge_shadowd /usr/sbin/sshd /usr/bin/ssh /usr/bin/db_verify; do
	if [[ ! -e $f ]]; then
		.ci/install-deps
		break
	fi
done

exec go run ./bench/cmd/takeover "$@"
