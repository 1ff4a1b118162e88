# Shared helpers of the shell integration tests (sourced). Each test prints "ok - ..." or
# "FAIL - ..." lines and ends with "<name>: N passed, M failed".
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
build=${DP_TEST_BUILD:-$root/build}
bin=$build/bin
export DP_KAFKA_BROKERS=${DP_KAFKA_BROKERS:-127.0.0.1:9092}
logdir=$build/it-logs
mkdir -p "$logdir"
passes=0
fails=0
children=()

ok() {
	echo "ok   - $*"
	passes=$((passes + 1))
}
bad() {
	echo "FAIL - $*"
	fails=$((fails + 1))
}
# check DESCRIPTION COMMAND... -> ok when the command succeeds
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

# expect DESCRIPTION -> ok when the previous command succeeded ([[ ... ]]; expect "...")
expect() {
	if [ $? -eq 0 ]; then ok "$1"; else bad "$1"; fi
}

# wait_until TIMEOUT_S COMMAND... -> polls every 100 ms until the command succeeds
wait_until() {
	local timeout=$1 t0=$SECONDS
	shift
	until "$@" >/dev/null 2>&1; do
		[ $((SECONDS - t0)) -ge "$timeout" ] && return 1
		sleep 0.1
	done
}

# start_service NAME LOGNAME ENV... -> starts build/bin/NAME with extra env, remembers the pid
start_service() {
	local name=$1 logname=$2
	shift 2
	env "$@" "$bin/$name" >"$logdir/$logname.log" 2>&1 &
	children+=($!)
	echo $!
}

stop_children() {
	local p
	for p in "${children[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${children[@]}"; do wait "$p" 2>/dev/null || true; done
	children=()
}

http_code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# json_get JSONTEXT PYTHON_EXPR -> evaluates the expression with the parsed document as d
json_get() {
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

finish() {
	local name=$1
	stop_children
	echo "$name: $passes passed, $fails failed"
	[ "$fails" -eq 0 ] && [ "$passes" -gt 0 ]
}
