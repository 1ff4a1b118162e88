#!/usr/bin/env bash
# bench/run.sh — `make bench`: an isolated stack (bench/work/stack, own ports), the scenarios, then
# everything stopped; writes bench/results/<UTC date>-<short commit>.{md,json} and latest.md.
# Benchmarks report; they never fail on a number. See bench/README.md.
#
# Knobs (environment): BENCH_RUNS (3), BENCH_WRK_DURATION (30s), BENCH_WRK_CONNS ("64 512"),
# BENCH_PRODUCE_RECORDS (200000), BENCH_E2E_RATES ("10 25 50 75 100 150 250 500 1000 2000 4000", stepped up until one is not sustained), BENCH_E2E_SECONDS (20),
# BENCH_REPLAY_EVENTS (1000000), BENCH_REPLAY_TIMEOUT (600 s),
# BENCH_GROWTH_SIZES ("10000 100000 1000000": deliveries in the stores for scenario 7),
# BENCH_E2E_DRAIN (30), BENCH_E2E_WARMUP ("2 5": rate and seconds of the unreported warm-up).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WORK=$ROOT/bench/work
RAW=$WORK/raw
LOGS=$WORK/logs
BB=$ROOT/build/bench
BIN=$ROOT/build/bin

export DP_STACK_DIR=$WORK/stack
export DP_STACK_KAFKA_PORT=${DP_STACK_KAFKA_PORT:-39192}
export DP_STACK_KAFKA_CONTROLLER_PORT=${DP_STACK_KAFKA_CONTROLLER_PORT:-39193}
export DP_STACK_REDIS_PORT=${DP_STACK_REDIS_PORT:-36479}
export DP_STACK_MONGO_PORT=${DP_STACK_MONGO_PORT:-27917}
export DP_STACK_FERRET_DEBUG_PORT=${DP_STACK_FERRET_DEBUG_PORT:-38188}
BROKERS=127.0.0.1:$DP_STACK_KAFKA_PORT
SIM_SCALE=${BENCH_SIM_TIME_SCALE:-600}
RUNS=${BENCH_RUNS:-3}
WRK_D=${BENCH_WRK_DURATION:-30s}
WRK_CONNS=${BENCH_WRK_CONNS:-64 512}
PRODUCE_N=${BENCH_PRODUCE_RECORDS:-200000}
E2E_RATES=${BENCH_E2E_RATES:-10 25 50 75 100 150 250 500 1000 2000 4000}
E2E_S=${BENCH_E2E_SECONDS:-20}
E2E_DRAIN=${BENCH_E2E_DRAIN:-30}
E2E_WARMUP=${BENCH_E2E_WARMUP:-2 5} # RATE SECONDS
REPLAY_N=${BENCH_REPLAY_EVENTS:-1000000}
REPLAY_TIMEOUT=${BENCH_REPLAY_TIMEOUT:-600}
GROWTH_SIZES=${BENCH_GROWTH_SIZES:-10000 100000 1000000}
BASELINE_PORT=18790
# service name:port (18780..18785)
SERVICES="ingress:18780 delivery:18781 package:18782 scheduler:18783 workflow:18784 dronesim:18785"
CONSUMERS="delivery package scheduler workflow dronesim"

say() { printf '[bench] %s\n' "$*"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }

declare -A SVC_PID=()
BASELINE_PID=

# stop_pid PID NEEDLE -> SIGTERM (then SIGKILL after 20 s) when PID is alive and its command line
# contains NEEDLE (a stale PID may belong to someone else by now)
stop_pid() {
	local pid=$1 needle=$2 i
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 0
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$needle" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 200); do
		[ -d "/proc/$pid" ] || break
		[ "$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" = Z ] && break
		sleep 0.1
	done
	if [ -d "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local name
	say "stopping everything"
	stop_pid "$BASELINE_PID" http_baseline
	for name in "${!SVC_PID[@]}"; do
		stop_pid "${SVC_PID[$name]}" "dronepipe-$name"
	done
	scripts/stack.sh down >>"$LOGS/stack.log" 2>&1 || say "stack down reported an error (see $LOGS/stack.log)"
}

svc_port() {
	local e
	for e in $SERVICES; do [ "${e%%:*}" = "$1" ] && echo "${e#*:}"; done
}

wait_ready() { # URL PID SECONDS
	local t0=$SECONDS
	until [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1")" = 200 ]; do
		[ -d "/proc/$2" ] || return 1
		[ $((SECONDS - t0)) -lt "$3" ] || return 1
		sleep 0.2
	done
}

start_service() {
	local name=$1 port
	port=$(svc_port "$name")
	env DP_STACK_DIR="$DP_STACK_DIR" DP_KAFKA_BROKERS="$BROKERS" \
		DP_REDIS_URL="redis://127.0.0.1:$DP_STACK_REDIS_PORT" \
		DP_MONGO_URI="mongodb://127.0.0.1:$DP_STACK_MONGO_PORT/" DP_HTTP_PORT="$port" \
		DP_SIM_TIME_SCALE="$SIM_SCALE" DP_LOG_LEVEL=warn \
		"$BIN/dronepipe-$name" >>"$LOGS/$name.log" 2>&1 </dev/null &
	SVC_PID[$name]=$!
}

# cpu_snapshot FILE -> "name pid ticks" for every process of the run, plus the machine's busy ticks
cpu_snapshot() {
	{
		awk '/^cpu / {print "machine", 0, $2+$3+$4+$7+$8+$9}' /proc/stat
		local name pid
		for name in "${!SVC_PID[@]}"; do
			pid=${SVC_PID[$name]}
			[ -r "/proc/$pid/stat" ] && echo "$name $pid $(awk '{print $14+$15}' "/proc/$pid/stat")"
		done
		# a server's forks (Redis's AOF rewrites) count as its own: reaped ones in its
		# children's times, running ones by their own
		local kids t
		for name in kafka redis ferretdb; do
			pid=$(cat "$DP_STACK_DIR/pids/$name.pid" 2>/dev/null) || continue
			[ -r "/proc/$pid/stat" ] || continue
			t=$(awk '{print $14+$15+$16+$17}' "/proc/$pid/stat")
			for kids in $(pgrep -P "$pid"); do
				t=$((t + $(awk '{print $14+$15}' "/proc/$kids/stat" 2>/dev/null || echo 0)))
			done
			echo "$name $pid $t"
		done
	} >"$1"
}

# mem_snapshot FILE -> "name pid VmHWM_kB VmRSS_kB" for every process of the run
mem_snapshot() {
	{
		local name pid
		for name in "${!SVC_PID[@]}"; do
			pid=${SVC_PID[$name]}
			[ -r "/proc/$pid/status" ] && echo "$name $pid $(awk '/^VmHWM/ {h=$2} /^VmRSS/ {r=$2} END {print h, r}' "/proc/$pid/status")"
		done
		for name in kafka redis ferretdb; do
			pid=$(cat "$DP_STACK_DIR/pids/$name.pid" 2>/dev/null) || continue
			[ -r "/proc/$pid/status" ] && echo "$name $pid $(awk '/^VmHWM/ {h=$2} /^VmRSS/ {r=$2} END {print h, r}' "/proc/$pid/status")"
		done
	} >"$1"
}

# dlq_counts FILE -> "topic records" for every .dlq topic (sum of end offsets)
dlq_counts() {
	local t
	for t in $(grep -v -E '^[[:space:]]*(#|$)' scripts/topics.txt | awk '{print $1}' | grep '\.dlq$'); do
		echo "$t $(timeout 20 kcat -C -b "$BROKERS" -t "$t" -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l)"
	done >"$1"
}

mark() { echo "$1 $(date -u +%s) $(loadavg)" >>"$RAW/marks.txt"; }

group_lag() { # GROUP TOPIC -> the group's total lag on the topic (empty when unknown)
	"$BIN/dronepipe" --brokers "$BROKERS" --json topics "$2" --group "$1" 2>/dev/null |
		jq -r --arg g "$1" --arg t "$2" '[.groups[] | select(.group == $g) | .topics[] | select(.topic == $t) | .lag] | first // empty'
}

# wait_lag0 GROUP TIMEOUT_S TOPIC... -> 0 when the group's lag on every topic reached 0 in time;
# prints the summed lag seen first and last ("first last")
wait_lag0() {
	local g=$1 timeout=$2 t0=$SECONDS first= sum t l
	shift 2
	while :; do
		sum=0
		for t in "$@"; do
			l=$(group_lag "$g" "$t")
			[ -n "$l" ] || { sum=; break; }
			sum=$((sum + l))
		done
		[ -z "$first" ] && [ -n "$sum" ] && first=$sum
		[ "$sum" = 0 ] && { echo "${first:-0} 0"; return 0; }
		[ $((SECONDS - t0)) -lt "$timeout" ] || { echo "${first:-null} ${sum:-null}"; return 1; }
		sleep 0.5
	done
}

# handled PORT -> records the service's stage has handled (ok or dead: a retried record counts
# once done), from its /metrics
handled() {
	curl -s -m 1 "http://127.0.0.1:$1/metrics" |
		awk '/^dronepipe_stage_records_total[{]/ && !/outcome="retry"/ {s += $NF} END {printf "%d\n", s}'
}

# wait_handled PORT N TIMEOUT_S -> 0 once the service has handled N records (polled every 0.1 s:
# the committed lag, polled with the CLI, is seen up to a second late, a large error on a replay of
# a few seconds)
wait_handled() {
	local port=$1 n=$2 timeout=$3 t0=$SECONDS h
	while :; do
		h=$(handled "$port")
		[ "${h:-0}" -ge "$n" ] && return 0
		[ $((SECONDS - t0)) -lt "$timeout" ] || return 1
		sleep 0.1
	done
}

# ---- start -------------------------------------------------------------------------------------
for f in "$BB/http_baseline" "$BB/produce" "$BB/e2e"; do
	[ -x "$f" ] || { say "missing $f: run 'make bench' (it builds the bench binaries)"; exit 1; }
done
command -v wrk >/dev/null || { say "wrk is not installed (apt-get install wrk)"; exit 1; }
mkdir -p "$WORK" "$LOGS"
# a previous run that was killed hard may have left its stack: stop it, then start from fresh data
scripts/stack.sh down >/dev/null 2>&1 || true
rm -rf "$DP_STACK_DIR" "$RAW" "$LOGS"
mkdir -p "$RAW" "$LOGS"
trap cleanup EXIT
trap 'exit 130' INT TERM
T_START=$SECONDS
date -u +%Y-%m-%dT%H:%M:%SZ >"$RAW/started_at"
mark start

# machine header
{
	echo "cpu_model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)"
	echo "cores=$(nproc)"
	echo "mem=$(free -h | awk '/^Mem:/ {print $2}')"
	echo "kernel=$(uname -r)"
	echo "kafka=$(. scripts/versions.env && echo "$KAFKA_VERSION (Scala $KAFKA_SCALA)")"
	echo "librdkafka=$(pkg-config --modversion rdkafka)"
	echo "ferretdb=$("${DP_FERRETDB_BIN:-$ROOT/.deps/bin/ferretdb}" --version 2>/dev/null | sed -n 's/^version: //p')"
	echo "redis=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
	echo "wrk=$(wrk --version 2>&1 | head -n1 | awk '{print $2}')"
	echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "dirty=$(git status --porcelain 2>/dev/null | grep -qv '^?? bench/' && echo yes || echo no)"
	echo "ulimit_n=$(ulimit -n)"
	echo "dirty_files=$(git status --porcelain 2>/dev/null | grep -v '^?? bench/' | awk '{print $2}' | tr '\n' ' ')"
} >"$RAW/machine.txt"
cat "$RAW/machine.txt"

say "infrastructure: Kafka $BROKERS, Redis $DP_STACK_REDIS_PORT, FerretDB $DP_STACK_MONGO_PORT (data in $DP_STACK_DIR)"
if ! scripts/stack.sh infra-up >>"$LOGS/stack.log" 2>&1; then
	tail -n 20 "$LOGS/stack.log"
	say "infrastructure did not start"
	exit 1
fi
for e in $SERVICES; do start_service "${e%%:*}"; done
for e in $SERVICES; do
	name=${e%%:*}
	if ! wait_ready "http://127.0.0.1:${e#*:}/readyz" "${SVC_PID[$name]}" 90; then
		tail -n 20 "$LOGS/$name.log"
		say "$name did not become ready"
		exit 1
	fi
done
say "stack ready after $((SECONDS - T_START)) s"

# thread_cpu PID -> "comm ticks" per thread of PID
thread_cpu() {
	local t
	for t in /proc/"$1"/task/*; do
		[ -r "$t/stat" ] && echo "$(tr ' ' '_' <"$t/comm") $(awk '{print $14+$15}' "$t/stat")"
	done
}

# profile_start PID PREFIX / profile_stop PID PREFIX: per-thread CPU ticks before and after
# (PREFIX-threads-{before,after}.txt, PREFIX-wall_s) and, when perf is installed and allowed, a
# flat profile (PREFIX.perf, reported at the end into PREFIX-dso.txt and PREFIX-sym.txt); why
# there is none goes to PREFIX-none.txt.
PERF_PID=
profile_start() {
	thread_cpu "$1" >"$2-threads-before.txt"
	date +%s.%N >"$2-t0"
	PERF_PID=
	if ! command -v perf >/dev/null; then
		echo "perf is not installed (scripts/install-deps.sh installs linux-perf)" >"$2-none.txt"
	else
		perf record -q -F 999 -p "$1" -o "$2.perf" >"$2-perf.log" 2>&1 &
		PERF_PID=$!
	fi
}
profile_stop() {
	if [ -n "$PERF_PID" ]; then
		kill -TERM "$PERF_PID" 2>/dev/null
		local i
		for i in $(seq 100); do [ -d "/proc/$PERF_PID" ] || break; sleep 0.1; done
		kill -KILL "$PERF_PID" 2>/dev/null
		wait "$PERF_PID" 2>/dev/null
		[ -s "$2.perf" ] || echo "perf record failed: $(head -c 300 "$2-perf.log")" >"$2-none.txt"
	fi
	echo "$(date +%s.%N) - $(cat "$2-t0")" | bc >"$2-wall_s"
	thread_cpu "$1" >"$2-threads-after.txt"
}

# ---- scenario 1: HTTP baseline -------------------------------------------------------------------
run_wrk() { # TAG URL CONNS RUN
	wrk -t2 -c"$3" -d"$WRK_D" --timeout 10s -s bench/wrk-post.lua "$2" >"$RAW/$1-c$3-$4.txt" 2>&1 ||
		echo "wrk failed: $?" >>"$RAW/$1-c$3-$4.txt"
}

mark s1
say "scenario 1: HTTP baseline (bench/http_baseline), wrk -t2 $WRK_D, ${RUNS}x per concurrency"
DP_HTTP_PORT=$BASELINE_PORT DP_LOG_LEVEL=warn "$BB/http_baseline" >>"$LOGS/http_baseline.log" 2>&1 </dev/null &
BASELINE_PID=$!
if wait_ready "http://127.0.0.1:$BASELINE_PORT/healthz" "$BASELINE_PID" 20; then
	for c in $WRK_CONNS; do
		for r in $(seq "$RUNS"); do run_wrk s1 "http://127.0.0.1:$BASELINE_PORT" "$c" "$r"; done
	done
else
	say "baseline server did not start (see $LOGS/http_baseline.log)"
fi
stop_pid "$BASELINE_PID" http_baseline
BASELINE_PID=

# ---- scenario 4: end to end (with the memory of scenario 5 sampled at its end) ----------------------
# warm-up (not reported as a figure): consumer groups joined, connections to the stores made, first
# deliveries flown; lets scenario 4 measure the steady state, not the cold start
say "scenario 4 warm-up: ${E2E_WARMUP% *}/s for ${E2E_WARMUP#* }s, until every delivery completed (up to 90 s)"
mark s4-warmup
DP_KAFKA_BROKERS=$BROKERS "$BB/e2e" 127.0.0.1 "$(svc_port ingress)" ${E2E_WARMUP% *} ${E2E_WARMUP#* } 90 8 \
	>"$RAW/s4-warmup.json" 2>>"$LOGS/e2e.log" || say "e2e warm-up failed (see $LOGS/e2e.log)"
cat "$RAW/s4-warmup.json"
mark s4
dlq_counts "$RAW/dlq-before.txt"
cpu_snapshot "$RAW/cpu-s4-before.txt"
# step up through the rates; once a rate is not sustained (a delivery not Scheduled within 5 s
# after the load stopped), higher rates are not run: their backlog would only add to the last one's
SKIP=
for rate in $E2E_RATES; do
	if [ -n "$SKIP" ]; then
		echo "{\"rate\":$rate,\"skipped\":\"rate $SKIP was not sustained\"}" >"$RAW/s4-$rate.json"
		continue
	fi
	say "scenario 4: end to end at $rate/s for ${E2E_S}s (drain up to ${E2E_DRAIN}s)"
	DP_KAFKA_BROKERS=$BROKERS "$BB/e2e" 127.0.0.1 "$(svc_port ingress)" "$rate" "$E2E_S" "$E2E_DRAIN" 64 \
		>"$RAW/s4-$rate.json" 2>>"$LOGS/e2e.log" || say "e2e at $rate/s failed (see $LOGS/e2e.log)"
	cat "$RAW/s4-$rate.json"
	jq -e '.accepted_202 > 0 and .scheduled >= .accepted_202 and .all_scheduled_after_s >= 0 and
		.all_scheduled_after_s < 5' "$RAW/s4-$rate.json" >/dev/null 2>&1 || SKIP=$rate
done
# the highest sustained rate again, RUNS - 1 more times: its figures as median and spread
TOP_RATE=$(jq -rs '[.[] | select(.accepted_202 > 0 and .scheduled >= .accepted_202 and
	.all_scheduled_after_s >= 0 and .all_scheduled_after_s < 5) | .rate] | max // empty' \
	"$RAW"/s4-[0-9]*.json 2>/dev/null)
if [ -n "$TOP_RATE" ]; then
	# the last run is profiled on FerretDB, the process that uses the most CPU per delivery:
	# where its time goes (bench/report.py groups perf's symbols by Go package)
	FERRET_PID=$(cat "$DP_STACK_DIR/pids/ferretdb.pid" 2>/dev/null || true)
	for r in $(seq 2 "$RUNS"); do
		say "scenario 4: end to end at $TOP_RATE/s again (run $r of $RUNS)"
		[ "$r" = "$RUNS" ] && [ -n "$FERRET_PID" ] && profile_start "$FERRET_PID" "$RAW/s4-ferret-profile"
		DP_KAFKA_BROKERS=$BROKERS "$BB/e2e" 127.0.0.1 "$(svc_port ingress)" "$TOP_RATE" "$E2E_S" "$E2E_DRAIN" 64 \
			>"$RAW/s4repeat-$r.json" 2>>"$LOGS/e2e.log" || say "e2e repeat $r failed (see $LOGS/e2e.log)"
		[ "$r" = "$RUNS" ] && [ -n "$FERRET_PID" ] && profile_stop "$FERRET_PID" "$RAW/s4-ferret-profile"
		cat "$RAW/s4repeat-$r.json"
	done
fi
cpu_snapshot "$RAW/cpu-s4-after.txt"
mem_snapshot "$RAW/mem-s4.txt"
dlq_counts "$RAW/dlq-after.txt"
mark s4-end

# ---- scenario 7: cost of growth ------------------------------------------------------------------
# The stores grow to each size in turn; then scenario 4 runs once more at the highest rate it
# sustained, and every process's memory is read. FerretDB grows by bench-seed (finished
# deliveries as package and scheduler leave them), Redis through the pipeline (one Completed
# event per delivery, applied by dronepipe-delivery). The workflow's changelog is not grown.
GROWTH_RATE=${BENCH_GROWTH_RATE:-${TOP_RATE:-5}}
echo "$GROWTH_RATE" >"$RAW/s7-rate"
seeded=0
for size in $GROWTH_SIZES; do
	[ "$size" -gt "$seeded" ] || continue
	mark "s7-$size"
	say "scenario 7: growing the stores to $size deliveries"
	"$BB/seed" "mongodb://127.0.0.1:$DP_STACK_MONGO_PORT/" "$seeded" "$size" >"$RAW/s7-$size-seed.json" \
		2>>"$LOGS/seed.log" || say "seeding FerretDB failed (see $LOGS/seed.log)"
	DP_KAFKA_BROKERS=$BROKERS "$BB/produce" $((size - seeded)) 1 completed >"$RAW/s7-$size-produce.json" \
		2>>"$LOGS/produce.log" || say "producing the delivery records failed (see $LOGS/produce.log)"
	t0=$SECONDS
	read -r _ left < <(wait_lag0 delivery 900 dronedelivery.delivery.events)
	# the simulator reads the same topic (Completed ends a flight): until it is through the
	# added events it flies no new drone, the fleet runs out and the measurement would be of
	# that backlog, not of the stores' size
	wait_lag0 dronesim 900 dronedelivery.delivery.events >/dev/null ||
		say "dronesim did not catch up with the added delivery events"
	echo "{\"seconds\":$((SECONDS - t0)),\"lag_left\":${left:-null},\"redis_keys\":$(redis-cli -p "$DP_STACK_REDIS_PORT" dbsize 2>/dev/null || echo null)}" \
		>"$RAW/s7-$size-redis.json"
	seeded=$size
	say "scenario 7: end to end at $GROWTH_RATE/s with $size deliveries in the stores"
	DP_KAFKA_BROKERS=$BROKERS "$BB/e2e" 127.0.0.1 "$(svc_port ingress)" "$GROWTH_RATE" "$E2E_S" "$E2E_DRAIN" 64 \
		>"$RAW/s7-$size.json" 2>>"$LOGS/e2e.log" || say "e2e at $size failed (see $LOGS/e2e.log)"
	cat "$RAW/s7-$size.json"
	mem_snapshot "$RAW/mem-s7-$size.txt"
done
mark s7-end

say "stopping the consumer services for scenarios 6b, 3 and 2"
for name in $CONSUMERS; do stop_pid "${SVC_PID[$name]}" "dronepipe-$name"; unset "SVC_PID[$name]"; done

# ---- scenario 6b: replay of the workflow group over its inputs ----------------------------------
# Every input of the workflow so far (scenarios 4 and 7) is consumed again from the earliest
# offsets: the sagas are restored from the changelog, and every input meets its saga as a
# duplicate or a stale record (outbox outputs are produced again with their eventIds). It runs
# before scenarios 3 and 2, whose requests would be new sagas, not a replay, and with the other
# consumers stopped.
WF_TOPICS="dronedelivery.requests dronedelivery.package.events dronedelivery.drone.events"
mark s6b
say "scenario 6b: replay of the workflow group over its inputs"
reset_ok=1
for t in $WF_TOPICS; do
	"$BIN/dronepipe" --brokers "$BROKERS" --json replay --group workflow --topic "$t" --to-earliest \
		>>"$RAW/s6b-plan.json" 2>>"$LOGS/replay.log" || reset_ok=
done
if [ -n "$reset_ok" ]; then
	lag0=0
	for t in $WF_TOPICS; do
		l=$(group_lag workflow "$t")
		lag0=$((lag0 + ${l:-0}))
	done
	t0=$(date +%s.%N)
	start_service workflow
	cpu_snapshot "$RAW/cpu-s6b-before.txt"
	by=handled
	wait_handled "$(svc_port workflow)" "$lag0" "$REPLAY_TIMEOUT" || by=lag
	t1=$(date +%s.%N)
	cpu_snapshot "$RAW/cpu-s6b-after.txt"
	read -r _ left < <(wait_lag0 workflow "$REPLAY_TIMEOUT" $WF_TOPICS)
	t_lag0=$(date +%s.%N)
	[ "$by" = lag ] && t1=$t_lag0
	echo "{\"records\":$lag0,\"lag_left\":${left:-null},\"seconds_from_start\":$(echo "$t1 - $t0" | bc),\"measured_by\":\"$by\",\"seconds_to_lag0\":$(echo "$t_lag0 - $t0" | bc),\"timeout_s\":$REPLAY_TIMEOUT}" >"$RAW/s6b.json"
	cat "$RAW/s6b.json"
	mem_snapshot "$RAW/mem-s6b.txt"
	stop_pid "${SVC_PID[workflow]}" dronepipe-workflow
	unset "SVC_PID[workflow]"
else
	say "workflow replay reset failed (see $LOGS/replay.log)"
fi
# ---- scenario 3: ingress alone (consumer services stopped: they would compete for the 2 cores) ----
mark s3
cpu_snapshot "$RAW/cpu-s3-before.txt"
say "scenario 3: ingress, wrk -t2 $WRK_D, ${RUNS}x per concurrency"
for c in $WRK_CONNS; do
	for r in $(seq "$RUNS"); do
		# the last run at the highest concurrency is profiled: the ingress's threads and, with
		# perf, its flat profile (where the CPU goes that the baseline does not spend)
		if [ "$c" = "${WRK_CONNS##* }" ] && [ "$r" = "$RUNS" ]; then
			profile_start "${SVC_PID[ingress]}" "$RAW/s3-profile"
			run_wrk s3 "http://127.0.0.1:$(svc_port ingress)" "$c" "$r"
			profile_stop "${SVC_PID[ingress]}" "$RAW/s3-profile"
		else
			run_wrk s3 "http://127.0.0.1:$(svc_port ingress)" "$c" "$r"
		fi
	done
done
cpu_snapshot "$RAW/cpu-s3-after.txt"

# ---- scenario 2: raw produce ceiling ---------------------------------------------------------------
mark s2
say "scenario 2: raw produce, $PRODUCE_N records, ${RUNS}x"
for r in $(seq "$RUNS"); do
	DP_KAFKA_BROKERS=$BROKERS "$BB/produce" "$PRODUCE_N" >"$RAW/s2-$r.json" 2>>"$LOGS/produce.log" ||
		say "produce run $r failed (see $LOGS/produce.log)"
	cat "$RAW/s2-$r.json"
done

# ---- scenario 6: replay of the delivery group --------------------------------------------------
# REPLAY_N lifecycle events are added to dronedelivery.delivery.events (the delivery service is
# stopped), the delivery group is reset to the earliest offsets with the ops CLI, and the service is
# started again: the time until it has handled as many records as the lag was (its /metrics, polled
# every 0.1 s) is the replay; the time until the committed lag is 0 (polled every 0.5 s) is kept too.
mark s6
say "scenario 6: replay of the delivery group over $REPLAY_N added lifecycle events (timeout ${REPLAY_TIMEOUT}s)"
DP_KAFKA_BROKERS=$BROKERS "$BB/produce" "$REPLAY_N" 1 lifecycle >"$RAW/s6-produce.json" 2>>"$LOGS/produce.log" ||
	say "producing the replay input failed (see $LOGS/produce.log)"
cat "$RAW/s6-produce.json"
if "$BIN/dronepipe" --brokers "$BROKERS" --json replay --group delivery --topic dronedelivery.delivery.events \
	--to-earliest >"$RAW/s6-plan.json" 2>>"$LOGS/replay.log"; then
	lag0=$(group_lag delivery dronedelivery.delivery.events)
	t0=$(date +%s.%N)
	start_service delivery
	cpu_snapshot "$RAW/cpu-s6-before.txt"
	wait_ready "http://127.0.0.1:$(svc_port delivery)/readyz" "${SVC_PID[delivery]}" 60 || true
	t_ready=$(date +%s.%N)
	by=handled
	wait_handled "$(svc_port delivery)" "${lag0:-0}" "$REPLAY_TIMEOUT" || by=lag
	t1=$(date +%s.%N)
	cpu_snapshot "$RAW/cpu-s6-after.txt"
	lag=$lag0
	while :; do
		lag=$(group_lag delivery dronedelivery.delivery.events)
		[ "$lag" = 0 ] && break
		[ "$(echo "$(date +%s.%N) - $t0 > $REPLAY_TIMEOUT" | bc)" = 1 ] && break
		sleep 0.5
	done
	t_lag0=$(date +%s.%N)
	[ "$by" = lag ] && t1=$t_lag0
	echo "{\"records\":${lag0:-null},\"lag_left\":${lag:-null},\"seconds_from_start\":$(echo "$t1 - $t0" | bc),\"seconds_from_ready\":$(echo "$t1 - $t_ready" | bc),\"measured_by\":\"$by\",\"seconds_to_lag0\":$(echo "$t_lag0 - $t0" | bc),\"timeout_s\":$REPLAY_TIMEOUT}" >"$RAW/s6.json"
	cat "$RAW/s6.json"
else
	say "replay reset failed (see $LOGS/replay.log)"
fi

mem_snapshot "$RAW/mem-end.txt"
"$BIN/dronepipe" --brokers "$BROKERS" --json topics >"$RAW/topics-end.json" 2>/dev/null || true
mark end
echo $((SECONDS - T_START)) >"$RAW/elapsed_s"

# ---- report --------------------------------------------------------------------------------------
if [ -s "$RAW/s3-profile.perf" ]; then
	perf report -i "$RAW/s3-profile.perf" --stdio --no-children --sort dso 2>/dev/null |
		grep -E '^ +[0-9.]+%' | head -n 12 >"$RAW/s3-profile-dso.txt"
	perf report -i "$RAW/s3-profile.perf" --stdio --no-children --sort dso,sym 2>/dev/null |
		grep -E '^ +[0-9.]+%' | head -n 30 >"$RAW/s3-profile-sym.txt"
fi
if [ -s "$RAW/s4-ferret-profile.perf" ]; then
	# every symbol (report.py sums them by package), not only the top ones
	perf report -i "$RAW/s4-ferret-profile.perf" --stdio --no-children --sort dso,sym 2>/dev/null |
		grep -E '^ +[0-9.]+%' >"$RAW/s4-ferret-profile-sym.txt"
fi
mkdir -p bench/results
python3 bench/report.py "$RAW" bench/results || say "report failed"
