#!/usr/bin/env bash
# ssh.sh — what the SSH connection layer (src/util/host_ssh.c) pays per operation: a login (a new master
# connection), a command on an open master, a 1 MiB file over SFTP (scp) on it, against the throwaway sshd of
# tests/sshd.sh (needs root and the SLURM test user, which tests/slurm_cluster.sh creates). The same ssh/scp
# options as host_ssh.c. Prints a Markdown section for bench/RESULTS.md ("## SSH").
set -euo pipefail
cd "$(dirname "$0")/.."
id -u fractaltest >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash --user-group fractaltest
dir=$(mktemp -d /tmp/fractal-bench-sshd.XXXXXX)
ctl=$(mktemp -d /tmp/fractal-bench-ssh.XXXXXX)
master=
cleanup() {
	[ -z "$master" ] || kill "$master" 2>/dev/null || true
	tests/sshd.sh stop "$dir"
	rm -rf "$ctl"
}
trap cleanup EXIT
tests/sshd.sh start "$dir" 2>/dev/null
. "$dir/env"
opts=(-F none -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none -o PasswordAuthentication=no
	-o KbdInteractiveAuthentication=no -o StrictHostKeyChecking=yes -o ServerAliveInterval=10
	-o ServerAliveCountMax=3 -o LogLevel=ERROR -o "IdentityFile=$SSHTEST_KEY" -o ConnectTimeout=10
	-o "UserKnownHostsFile=$SSHTEST_KNOWN_HOSTS" -o "ControlPath=$ctl/m.sock")
median() { sort -n | awk '{ a[NR] = $1 } END { printf "%.0f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }
logins=$(for i in $(seq 10); do ms ssh "${opts[@]}" -o ControlMaster=no -o ControlPath=none -p "$SSHTEST_PORT" \
	-l fractaltest 127.0.0.1 true; done | median)
ssh "${opts[@]}" -M -N -o ControlPersist=no -p "$SSHTEST_PORT" -l fractaltest 127.0.0.1 </dev/null &
master=$!
until [ -S "$ctl/m.sock" ]; do sleep 0.01; done
cmds=$(for i in $(seq 20); do ms ssh "${opts[@]}" -o ControlMaster=no -p "$SSHTEST_PORT" -l fractaltest 127.0.0.1 \
	true; done | median)
head -c 1048576 /dev/urandom >"$ctl/blob"
puts=$(for i in $(seq 10); do ms scp -q -B "${opts[@]}" -o ControlMaster=no -P "$SSHTEST_PORT" "$ctl/blob" \
	fractaltest@127.0.0.1:/tmp/fractal-bench-blob; done | median)
ssh "${opts[@]}" -o ControlMaster=no -p "$SSHTEST_PORT" -l fractaltest 127.0.0.1 rm -f /tmp/fractal-bench-blob
cat <<MD
## SSH (slurm_ssh connection layer)

Run on $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) cores, with \`bench/ssh.sh\` against \`tests/sshd.sh\`'s server on
127.0.0.1 (ed25519 keys; 1-minute load average $(cut -d' ' -f1 /proc/loadavg) at the end), with host_ssh.c's options:

| operation | median (ms) |
|---|---:|
| a login: \`ssh ... true\` without a master (10 runs) | $logins |
| a command on an open master (\`ControlMaster\`; 20 runs) | $cmds |
| 1 MiB sent with scp (SFTP) on the master (10 runs) | $puts |
MD
