#!/usr/bin/env bash
# Integration tests: scripts/test-it.sh <build dir>
#
# Starts an ISOLATED infrastructure stack (Kafka, Redis, FerretDB and the topics; no services) with
# fresh data in <build dir>/it-stack on its own ports, so it runs next to a `make up` stack:
#   Kafka 19092 (controller 19093), Redis 16379, FerretDB 27117 (debug 18088)
# (override with DP_IT_KAFKA_PORT, DP_IT_KAFKA_CONTROLLER_PORT, DP_IT_REDIS_PORT, DP_IT_MONGO_PORT,
# DP_IT_FERRET_DEBUG_PORT). Then runs every integration test, each under `timeout` (DP_IT_TIMEOUT
# seconds, default 600):
#   <build dir>/tests/it/test_*   C test programs (built by make from tests/it/*.c)
#   tests/it/test_*.sh            shell tests
# with DP_KAFKA_BROKERS, DP_REDIS_URL, DP_MONGO_URI, DP_TEST_BUILD, DP_TEST_STACK_DIR (and the
# DP_STACK_* of the isolated stack, so a test can call scripts/stack.sh on it). DP_IT_FILTER=regex
# runs only the tests whose name matches. The stack is always stopped at the end (its logs stay in
# <build dir>/it-stack/logs). A test also fails when a service log it wrote (<build dir>/it-logs)
# holds a sanitizer report: with a SAN=1 build a service that hits ASan/UBSan aborts, and what the
# test sees then is only a timeout. Last line: "it: N passed, M failed"; exit status non-zero when
# a test failed or no test ran.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || {
	echo "usage: $0 <build dir>" >&2
	exit 2
}
mkdir -p "$1"
build=$(cd "$1" && pwd)

export DP_STACK_DIR=$build/it-stack
export DP_STACK_KAFKA_PORT=${DP_IT_KAFKA_PORT:-19092}
export DP_STACK_KAFKA_CONTROLLER_PORT=${DP_IT_KAFKA_CONTROLLER_PORT:-19093}
export DP_STACK_REDIS_PORT=${DP_IT_REDIS_PORT:-16379}
export DP_STACK_MONGO_PORT=${DP_IT_MONGO_PORT:-27117}
export DP_STACK_FERRET_DEBUG_PORT=${DP_IT_FERRET_DEBUG_PORT:-18088}
export DP_STACK_KAFKA_HEAP=${DP_IT_KAFKA_HEAP:-${DP_STACK_KAFKA_HEAP:-512m}}
export DP_PARTITIONS=${DP_PARTITIONS:-6}
export DP_KAFKA_BROKERS=127.0.0.1:$DP_STACK_KAFKA_PORT
export DP_REDIS_URL=redis://127.0.0.1:$DP_STACK_REDIS_PORT
export DP_MONGO_URI=mongodb://127.0.0.1:$DP_STACK_MONGO_PORT/
export DP_TEST_BUILD=$build
export DP_TEST_STACK_DIR=$DP_STACK_DIR
per_test_timeout=${DP_IT_TIMEOUT:-600}
stack=$root/scripts/stack.sh

stopped=0
finish() {
	[ "$stopped" = 1 ] && return
	stopped=1
	echo "it: stopping the isolated stack"
	"$stack" down >/dev/null || echo "it: warning: 'stack.sh down' failed for $DP_STACK_DIR" >&2
}

# Fresh data each run: stop a leftover stack of an interrupted run, wipe, start.
"$stack" clean-data >/dev/null 2>&1 || true
rm -rf "$DP_STACK_DIR"
trap finish EXIT
trap 'exit 130' INT TERM
echo "it: starting the isolated stack in $DP_STACK_DIR"
if ! "$stack" infra-up; then
	finish
	echo "it: the isolated stack did not start (logs: $DP_STACK_DIR/logs)"
	echo "it: 0 passed, 1 failed"
	exit 1
fi

tests=()
for t in "$build"/tests/it/test_*; do
	[ -f "$t" ] && [ -x "$t" ] && tests+=("$t")
done
for t in "$root"/tests/it/test_*.sh; do
	[ -f "$t" ] && tests+=("$t")
done

pass=0
fail=0
failed=()
logs=$build/it-logs
mkdir -p "$logs"
mark=$(mktemp "$build/.it-mark.XXXXXX")
trap 'rm -f "$mark"; finish' EXIT

# The logs written since the mark that hold a sanitizer report (each named, with its summary).
sanitizer_reports() {
	local f found=1
	while IFS= read -r f; do
		if grep -qE '^==[0-9]+==ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
			echo "=== sanitizer report in $f:"
			grep -m3 -E '^==[0-9]+==ERROR|^SUMMARY|runtime error:' "$f"
			found=0
		fi
	done < <(find "$logs" -type f -name '*.log' -newer "$mark")
	return $found
}
for t in "${tests[@]}"; do
	name=${t#"$root"/}
	name=${name#"$build"/}
	if [ -n "${DP_IT_FILTER:-}" ] && ! [[ $name =~ $DP_IT_FILTER ]]; then
		continue
	fi
	echo "=== RUN  $name"
	t0=$SECONDS
	touch "$mark"
	case $t in
	*.sh) timeout -k 10 "$per_test_timeout" bash "$t" ;;
	*) timeout -k 10 "$per_test_timeout" "$t" ;;
	esac
	rc=$?
	if sanitizer_reports && [ $rc -eq 0 ]; then
		rc=1
	fi
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1))
		echo "=== PASS $name ($((SECONDS - t0))s)"
	else
		fail=$((fail + 1))
		failed+=("$name")
		[ $rc -eq 124 ] && echo "=== TIMEOUT after ${per_test_timeout}s"
		echo "=== FAIL $name (exit $rc, $((SECONDS - t0))s)"
	fi
done

finish
[ ${#failed[@]} -eq 0 ] || printf 'it: FAILED: %s\n' "${failed[@]}"
[ $((pass + fail)) -gt 0 ] || echo "it: no integration test found (tests/it/test_*.sh, $build/tests/it/test_*)"
echo "it: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
