#!/usr/bin/env bash
# make test-fresh: proves that README's `make up` works the first time on a bare Debian 12 machine.
#
#   1. mmdebstrap builds a minimal Debian 12 root (variant minbase, plus `make`, which README's
#      first command needs) in a temporary folder;
#   2. copies in what makes this machine reach the package registries: its extra trust anchors
#      (/usr/local/share/ca-certificates), apt's Acquire settings and Debian sources, Maven's
#      ~/.m2/settings.xml, the Go proxy settings (GOPROXY, GOSUMDB, GONOSUMDB, GOPRIVATE,
#      GONOPROXY, GOINSECURE) and any *_proxy variables; then a `git clone` of the current commit
#      (HEAD: uncommitted changes are not tested);
#   3. inside `chroot` (with /proc, /sys and /dev mounted, always unmounted on exit, failure or
#      Ctrl-C) runs `make up` on ports of its own, posts README's first request, polls the
#      delivery service until the delivery's history shows Scheduled, runs `make down` and checks
#      that no process of the chroot is left;
#   4. prints "test-fresh: 1 passed, 0 failed" (or 0 passed, 1 failed, exit 1) and the durations.
#
# Needs root (mmdebstrap, mount, chroot) and mmdebstrap (`apt-get install mmdebstrap`). The chroot
# shares this machine's network, so its stack runs on ports no other stack uses:
#   Kafka 29092 (controller 29093), Redis 26379, FerretDB 27217 (debug 28088), services 28080-28085
# (the default stack uses 9092/6379/27017/8080-8085, the integration tests 19092/16379/27117).
# Package installs in the chroot never start a service (policy-rc.d), for the same reason.
#
# Caches: apt's downloaded packages, the Go module cache (it also keeps the Go toolchain zip),
# Go's build cache and the Maven repository are bind-mounted from DP_FRESH_CACHE (default
# ~/.cache/dronepipe-test-fresh), so a second run downloads and compiles less; the chroot itself
# is always new. `scripts/test-fresh.sh --cold` uses empty caches (a throwaway folder).
# DP_FRESH_KEEP=1 keeps the chroot folder after a failure (its logs are in <root>/root/dronepipe/.run/logs).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
start=$SECONDS
say() { printf '[test-fresh] %s\n' "$*"; }
verdict() {
	if [ "$1" = pass ]; then
		echo "test-fresh: 1 passed, 0 failed ($(elapsed)${cache_note:+, $cache_note})"
	else
		echo "test-fresh: 0 passed, 1 failed ($2)"
	fi
}
elapsed() { printf '%dm%02ds' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)); }
fail() {
	say "FAIL: $*" >&2
	failed_reason=$*
	exit 1
}

cold=0
case ${1:-} in
--cold) cold=1 ;;
'') ;;
*)
	echo "usage: $0 [--cold]" >&2
	exit 2
	;;
esac

[ "$(id -u)" = 0 ] || {
	verdict fail "needs root: mmdebstrap, mount and chroot"
	exit 1
}
command -v mmdebstrap >/dev/null || {
	verdict fail "mmdebstrap is missing: apt-get install mmdebstrap"
	exit 1
}

ING=28080 DEL=28081
STACK_ENV=(DP_STACK_KAFKA_PORT=29092 DP_STACK_KAFKA_CONTROLLER_PORT=29093 DP_STACK_REDIS_PORT=26379
	DP_STACK_MONGO_PORT=27217 DP_STACK_FERRET_DEBUG_PORT=28088 DP_STACK_PORT_INGRESS=$ING
	DP_STACK_PORT_DELIVERY=$DEL DP_STACK_PORT_PACKAGE=28082 DP_STACK_PORT_SCHEDULER=28083
	DP_STACK_PORT_WORKFLOW=28084 DP_STACK_PORT_DRONESIM=28085)

commit=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
	say "note: uncommitted changes are not tested: the chroot gets a clone of $commit"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/dronepipe-fresh.XXXXXX")
rootfs=$work/root
log=$work/chroot.log
if [ $cold = 1 ]; then
	cache=$work/cache
	cache_note="cold: empty caches"
else
	cache=${DP_FRESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dronepipe-test-fresh}
	cache_note="caches in $cache"
fi
mkdir -p "$cache/apt" "$cache/gomod" "$cache/gobuild" "$cache/m2"
failed_reason=
runner=

# ---- clean-up: runs on every exit (pass, failure, Ctrl-C, TERM) ----------------------------------

# chroot_pids -> PIDs of processes whose root directory is the chroot
chroot_pids() {
	local p r
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		[ "$r" = "$rootfs" ] && printf '%s\n' "${p#/proc/}"
	done
	return 0
}

# mounts_under DIR -> mount points at or below DIR, deepest first
mounts_under() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

stop_chroot_processes() {
	local pids i
	pids=$(chroot_pids)
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086 # one PID per word
	kill -TERM $pids 2>/dev/null || true
	for i in $(seq 1 50); do
		pids=$(chroot_pids)
		[ -n "$pids" ] || return 0
		sleep 0.2
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
	sleep 0.5
}

cleanup() {
	local rc=$? m left
	# the clean-up itself is never cut short: a second Ctrl-C must not leave /dev mounted
	trap - EXIT
	trap '' INT TERM
	set +e
	if [ -n "${runner:-}" ]; then
		# interrupted while the chroot ran: stop all of it (TERM, then KILL after 10 s)
		say "stopping the processes of the chroot"
		stop_chroot_processes
		wait "$runner" 2>/dev/null
	fi
	if [ -d "$rootfs/root/dronepipe/.run/pids" ] && [ -n "$(chroot_pids)$(ls "$rootfs/root/dronepipe/.run/pids" 2>/dev/null)" ]; then
		# a failure or an interrupt while the stack ran: stop it the way a user would
		timeout 120 chroot "$rootfs" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			"${STACK_ENV[@]}" make -C /root/dronepipe down >>"$log" 2>&1
	fi
	stop_chroot_processes
	for m in $(mounts_under "$rootfs"); do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	left=$(mounts_under "$rootfs")
	if [ $rc -ne 0 ]; then
		cp "$log" "${TMPDIR:-/tmp}/dronepipe-test-fresh.log" 2>/dev/null &&
			say "log of the run: ${TMPDIR:-/tmp}/dronepipe-test-fresh.log"
	fi
	if [ -n "$left" ]; then
		say "still mounted, NOT deleting $work: $left" >&2
		rc=1
	elif [ $rc -ne 0 ] && [ "${DP_FRESH_KEEP:-0}" = 1 ]; then
		say "kept $work (DP_FRESH_KEEP=1)"
	else
		# --one-file-system: never descend into anything still mounted
		rm -rf --one-file-system "$work"
	fi
	if [ $rc -eq 0 ]; then
		verdict pass
	else
		verdict fail "${failed_reason:-interrupted or failed, exit $rc}"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'failed_reason="interrupted (SIGINT)"; exit 130' INT
trap 'failed_reason="interrupted (SIGTERM)"; exit 143' TERM

# ---- 1. a minimal Debian 12 --------------------------------------------------------------------

# This machine's Debian sources (deb822 or one-line files naming bookworm), else the Debian mirror.
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	if [ -f "$f" ] && grep -Eq '^[^#]*bookworm' "$f"; then sources+=("$f"); fi
done
[ ${#sources[@]} -gt 0 ] || sources=(http://deb.debian.org/debian)
# apt settings that decide how apt reaches the mirror (proxy, TLS, validity of snapshots)
aptopts=()
for f in /etc/apt/apt.conf.d/*; do
	if [ -f "$f" ] && grep -Eq '^[[:space:]]*Acquire' "$f"; then aptopts+=("--aptopt=$f"); fi
done

t0=$SECONDS
say "building a minimal Debian 12 in $rootfs (sources: ${sources[*]})"
mmdebstrap --quiet --variant=minbase --include=make "${aptopts[@]}" \
	--skip=essential/unlink \
	--setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
	--setup-hook="sync-in $cache/apt /var/cache/apt/archives/" \
	--customize-hook="sync-out /var/cache/apt/archives $cache/apt" \
	bookworm "$rootfs" "${sources[@]}" >>"$log" 2>&1 || {
	tail -n 20 "$log" >&2
	fail "mmdebstrap could not build the Debian 12 root"
}
t_debootstrap=$((SECONDS - t0))

# ---- 2. this machine's registry settings, and the repository -----------------------------------

if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
	# ca-certificates (installed by `make up`) adds these to the chroot's trust store, Java's too
	mkdir -p "$rootfs/usr/local/share/ca-certificates"
	cp -r /usr/local/share/ca-certificates/. "$rootfs/usr/local/share/ca-certificates/"
fi
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
printf '#!/bin/sh\n# test-fresh: the chroot shares the network, so no package starts a service\nexit 101\n' \
	>"$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"
mkdir -p "$rootfs/root/.m2/repository" "$rootfs/root/go/pkg/mod" "$rootfs/root/.cache/go-build" \
	"$rootfs/root/.config/go" "$rootfs/var/cache/apt/archives"
if [ -f "$HOME/.m2/settings.xml" ]; then cp "$HOME/.m2/settings.xml" "$rootfs/root/.m2/settings.xml"; fi
if command -v go >/dev/null; then
	for v in GOPROXY GOSUMDB GONOSUMDB GOPRIVATE GONOPROXY GOINSECURE; do
		val=$(go env "$v")
		if [ -n "$val" ]; then printf '%s=%s\n' "$v" "$val"; fi
	done >"$rootfs/root/.config/go/env"
fi
proxy_env=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
	if [ -n "${!v:-}" ]; then proxy_env+=("$v=${!v}"); fi
done
git clone -q --no-hardlinks "$repo" "$rootfs/root/dronepipe"
git -C "$rootfs/root/dronepipe" checkout -q --detach "$commit"

# ---- 3. mounts and the run ---------------------------------------------------------------------

mount -t proc proc "$rootfs/proc"
mount --rbind /sys "$rootfs/sys"
mount --make-rslave "$rootfs/sys"
mount --rbind /dev "$rootfs/dev"
mount --make-rslave "$rootfs/dev"
mount --bind "$cache/apt" "$rootfs/var/cache/apt/archives"
mount --bind "$cache/gomod" "$rootfs/root/go/pkg/mod"
mount --bind "$cache/gobuild" "$rootfs/root/.cache/go-build"
mount --bind "$cache/m2" "$rootfs/root/.m2/repository"

# What a user types, as root (install-deps.sh runs apt-get), plus README's first request against
# this stack's ports. Each step prints a "step <name> <seconds>" line for the summary.
cat >"$rootfs/root/fresh-run.sh" <<EOF
#!/bin/bash
set -euo pipefail
cd /root/dronepipe
step() { echo "step \$1 \$((SECONDS - t))"; t=\$SECONDS; }
t=\$SECONDS
make up
step make-up
answer=\$(curl -s -X POST localhost:$ING/api/deliveryrequests -H 'Content-Type: application/json' -d '{
  "ownerId": "owner-1", "pickupLocation": "47.61,-122.33", "dropOffLocation": "Pike Place Market",
  "pickupTime": "2026-11-27T10:00:00Z", "confirmationRequired": "None",
  "packageInfo": {"packageId": "pkg-1", "size": "Small", "weight": 1.5}}')
id=\$(printf '%s' "\$answer" | sed -n 's/.*"deliveryId"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
[ -n "\$id" ] || { echo "FAIL: the ingress did not accept README's first request: \$answer"; exit 1; }
echo "delivery \$id accepted"
deadline=\$((SECONDS + 120)) history=
while [ \$SECONDS -lt \$deadline ]; do
	history=\$(curl -s localhost:$DEL/api/deliveries/\$id/history || true)
	printf '%s' "\$history" | grep -Eq '"stageName" *: *"(Scheduled|Failed|Cancelled)"' && break
	sleep 0.5
done
status=\$(curl -s localhost:$DEL/api/deliveries/\$id/status || true)
echo "status: \$status"
printf '%s' "\$history" | grep -Eq '"stageName" *: *"Scheduled"' || {
	echo "FAIL: delivery \$id did not reach Scheduled within 120 s; history: \$history"
	exit 1
}
echo "delivery \$id: Scheduled (a drone was assigned)"
step delivery
make down
step make-down
EOF
chmod 755 "$rootfs/root/fresh-run.sh"

say "clone of $commit: make up in the chroot (ports: ${STACK_ENV[*]})"
t0=$SECONDS
# In the background, so that a signal to this script runs its trap at once (bash defers traps
# while a foreground command runs); the clean-up then stops every process of the chroot.
{
	chroot "$rootfs" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		LANG=C.UTF-8 TERM=dumb "${proxy_env[@]}" "${STACK_ENV[@]}" /root/fresh-run.sh 2>&1
	echo $? >"$work/rc"
} | tee -a "$log" | grep --line-buffered -E '^(step |delivery |status: |FAIL|\[install\]|\[stack\] (error|.*ready)|make: \*\*\*)' |
	sed -u 's/^/  | /' &
runner=$!
wait $runner || true
runner=
rc=$(cat "$work/rc" 2>/dev/null || echo 1)
t_run=$((SECONDS - t0))
[ $rc -eq 0 ] || {
	tail -n 30 "$log" | sed 's/^/  > /' >&2
	fail "the run in the chroot failed (exit $rc); see the log"
}
left=$(chroot_pids)
[ -z "$left" ] || fail "make down left processes running in the chroot: $(echo "$left" | tr '\n' ' ')"
grep -q '^delivery .*: Scheduled' "$log" || fail "no Scheduled delivery in the log"
say "durations: Debian root ${t_debootstrap}s; $(grep '^step ' "$log" | awk '{printf "%s %ss; ", $2, $3}')in the chroot ${t_run}s; total $(elapsed)"
