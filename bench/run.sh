#!/usr/bin/env bash
# sgerun's fan-out benchmark against pdsh and clush, in one command:
#
#   sudo bench/run.sh [bench flags, e.g. -runs 7]
#
# Installs pdsh, clustershell, GNU time and OpenSSH from Debian, creates the
# login user the real-sshd case uses (sgerunbench, shell /bin/sh), then runs
# go run ./bench/cmd/bench, which starts and stops its own sshd listeners on
# 127.0.1.1-127.0.1.128:2222 and its simulated hosts on 127.0.0.1, and
# updates docs/performance.md. Needs root (apt-get, useradd, sshd).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

if [[ $(id -u) -ne 0 ]]; then
	echo "bench/run.sh: must run as root" >&2
	exit 1
fi

missing=()
for bin in pdsh clush /usr/bin/time /usr/sbin/sshd ssh; do
	command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if ((${#missing[@]})); then
	export DEBIAN_FRONTEND=noninteractive
	# Keep openssh-server's postinst from starting a system sshd.
	policy=/usr/sbin/policy-rc.d
	created_policy=no
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		created_policy=yes
	fi
	trap '[[ $created_policy == yes ]] && rm -f "$policy"' EXIT
	apt-get update
	apt-get install -y --no-install-recommends pdsh clustershell time openssh-server openssh-client
fi

# A login user whose shell reads no rc files: bash sources ~/.bashrc for
# every command sshd runs, which would measure the rc files, not fan-out.
if ! id sgerunbench >/dev/null 2>&1; then
	useradd --system --create-home --home-dir /var/lib/sgerunbench --shell /bin/sh sgerunbench
fi
usermod -p '*' sgerunbench # not locked: sshd without PAM refuses locked accounts

# Go raises its own descriptor limit; pdsh and clush inherit this one.
ulimit -n 65536 2>/dev/null || true

exec go run ./bench/cmd/bench "$@"
