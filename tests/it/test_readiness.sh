#!/usr/bin/env bash
# Integration test of the readiness of dronepipe-package and dronepipe-scheduler against the real
# broker and FerretDB (scripts/test-it.sh provides them, and the stack's pid files in
# DP_TEST_STACK_DIR): /healthz and /readyz never wait on a store call. With FerretDB frozen
# (SIGSTOP), both answer within a second throughout; /readyz turns 503 naming the store and the
# failed call once a call timed out (DP_MONGO_TIMEOUT_MS 1000); SIGCONT: ready again.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
trap 'stop_children; [ -n "${ferret_pid:-}" ] && kill -CONT "$ferret_pid" 2>/dev/null' EXIT

package_port=18682
scheduler_port=18683
stack_dir=${DP_TEST_STACK_DIR:-${DP_STACK_DIR:-}}
run=$(python3 -c 'import uuid; print(uuid.uuid4().hex[:8])')
common=(DP_MONGO_TIMEOUT_MS=1000 DP_MONGO_CONNECT_TIMEOUT_MS=1000 DP_LOG_LEVEL=info
	DP_KAFKA_PROP_session_timeout_ms=6000 DP_KAFKA_PROP_heartbeat_interval_ms=1000)
start_service dronepipe-package readiness-package DP_HTTP_PORT=$package_port \
	DP_PACKAGE_DB="rdpkg_$run" "${common[@]}" >/dev/null
start_service dronepipe-scheduler readiness-scheduler DP_HTTP_PORT=$scheduler_port \
	DP_SCHEDULER_DB="rdsch_$run" DP_FLEET_SIZE=10 "${common[@]}" >/dev/null
ready() { [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$1/readyz")" = 200 ]; }
wait_until 60 ready $package_port
expect "package ready"
wait_until 60 ready $scheduler_port
expect "scheduler ready"

ferret_pid=$(cat "$stack_dir/pids/ferretdb.pid" 2>/dev/null)
if [ -z "$ferret_pid" ] || [ ! -d "/proc/$ferret_pid" ]; then
	bad "the stack's FerretDB pid file (DP_TEST_STACK_DIR)"
	finish test_readiness
	exit 1
fi
kill -STOP "$ferret_pid"
declare -A late=() saw=()
t0=$SECONDS
while [ $((SECONDS - t0)) -lt 8 ]; do
	for svc in package:$package_port scheduler:$scheduler_port; do
		name=${svc%%:*} p=${svc##*:}
		hc=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$p/healthz") || late[$name]=$((${late[$name]:-0} + 1))
		[ "$hc" = 200 ] || late[$name]=$((${late[$name]:-0} + 1))
		r=$(curl -s -m 1 -w '|%{http_code}' "http://127.0.0.1:$p/readyz") || late[$name]=$((${late[$name]:-0} + 1))
		[[ "$r" == *'|503' && "$r" == *FerretDB* ]] && saw[$name]=${r%|*}
	done
	sleep 0.2
done
kill -CONT "$ferret_pid"
for name in package scheduler; do
	check "FerretDB frozen 8 s: every $name /healthz (200) and /readyz answered within 1 s (${late[$name]:-0} late or wrong)" \
		[ "${late[$name]:-0}" = 0 ]
	check "FerretDB frozen: $name /readyz 503 naming the store and the failed call (${saw[$name]:-none})" \
		[ -n "${saw[$name]:-}" ]
done
grep -q 'failing since' <<<"${saw[package]:-}${saw[scheduler]:-}"
expect "the reason says since when"
wait_until 30 ready $package_port
expect "FerretDB thawed: package ready again"
wait_until 30 ready $scheduler_port
expect "FerretDB thawed: scheduler ready again"

finish test_readiness
