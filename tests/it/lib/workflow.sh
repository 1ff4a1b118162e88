# Helpers of tests/it/test_workflow.sh (sourced after common.sh): starting and stopping the
# services of one phase, posting deliveries in bulk, snapshots of topics and of the stores.

ingress_port=18580
workflow_port=18581
package_port=18582
scheduler_port=18583
ingress=http://127.0.0.1:$ingress_port
mongo_port=${DP_MONGO_URI#mongodb://}
mongo_port=${mongo_port#*:}
mongo_port=${mongo_port%%/*}
wf_tmp=$logdir/workflow
mkdir -p "$wf_tmp"

now_ms() { date +%s%3N; }

# svc_start VAR NAME LOGNAME ENV... -> starts build/bin/NAME, stores its pid in VAR
svc_start() {
	local var=$1
	shift
	start_service "$@" >/dev/null
	printf -v "$var" '%s' "${children[-1]}"
}

# svc_stop PID [SIGNAL] -> stops one service we started (TERM by default) and forgets it
svc_stop() {
	local pid=$1 sig=${2:-TERM} p keep=()
	[ -n "$pid" ] || return 0
	kill "-$sig" "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	for p in "${children[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	children=("${keep[@]}")
}

ready() { curl -sf -o /dev/null -m 2 "http://127.0.0.1:$1/readyz"; }

# Services of a phase. Retry delays are short so a store outage heals within seconds.
start_ingress() {
	svc_start ingress_pid dronepipe-ingress "wf-ingress" DP_HTTP_PORT=$ingress_port
	wait_until 30 ready $ingress_port || bad "ingress ready"
}
# start_workflow LOGNAME [ENV...]
start_workflow() {
	local log=$1
	shift
	svc_start workflow_pid dronepipe-workflow "$log" DP_HTTP_PORT=$workflow_port \
		DP_RETRY_BACKOFF_MAX_MS=2000 DP_STATS_INTERVAL_MS=1000 "$@"
	wait_until 60 ready $workflow_port || bad "workflow ready ($log)"
}
# warm_up NAME -> whatever earlier suites left on the topics is worked off, on a fleet of its own
# (500 drones) by a workflow that gives up an assignment after 8 s; then that workflow and those
# stores are stopped, and the suite starts its own
warm_up() {
	start_workflow "wf-$1-warmup-workflow" DP_WORKFLOW_ASSIGN_TIMEOUT_S=8 \
		DP_WORKFLOW_ASSIGN_BACKOFF_MIN_MS=200 DP_WORKFLOW_ASSIGN_BACKOFF_MAX_MS=1000
	start_stores "$1-warmup" 500
	wait_until 240 quiet $workflow_port $package_port $scheduler_port || bad "warm-up: pipeline at rest"
	stop_stores
	svc_stop "$workflow_pid"
}
# start_stores PHASE FLEET [ENV...] -> package and scheduler (with ENV) on databases of their own
# for the phase
start_stores() {
	local phase=$1 fleet=$2
	shift 2
	svc_start package_pid dronepipe-package "wf-package-$phase" DP_HTTP_PORT=$package_port \
		DP_PACKAGE_DB="wfpkg_${phase}_$run_id" DP_RETRY_BACKOFF_MAX_MS=2000 DP_STATS_INTERVAL_MS=1000
	svc_start scheduler_pid dronepipe-scheduler "wf-scheduler-$phase" DP_HTTP_PORT=$scheduler_port \
		DP_SCHEDULER_DB="wfsch_${phase}_$run_id" DP_FLEET_SIZE="$fleet" DP_RETRY_BACKOFF_MAX_MS=2000 \
		DP_STATS_INTERVAL_MS=1000 "$@"
	wait_until 60 ready $package_port || bad "package ready ($phase)"
	wait_until 60 ready $scheduler_port || bad "scheduler ready ($phase)"
	wait_until 60 grep -q fleet_seeded "$logdir/wf-scheduler-$phase.log" || bad "fleet of $fleet seeded ($phase)"
}
stop_stores() {
	svc_stop "$package_pid"
	svc_stop "$scheduler_pid"
	package_pid= scheduler_pid=
}

# post_many PHASE N OUTFILE [CONCURRENCY [PAUSE_S]] -> POSTs N deliveries (packageId pkg-PHASE-i),
# appending each deliveryId to OUTFILE as soon as it is accepted (each worker pauses PAUSE_S after
# a POST); fails when a POST did not get 202. Points are random in the demo city's box unless
# WF_POINTS="PICKUP;DROPOFF" ("lat,lon;lat,lon") fixes them.
post_many() {
	: >"$3"
	python3 - "$ingress_port" "$1" "$2" "$3" "${4:-6}" "${5:-0}" <<'PY'
import http.client, json, os, random, sys, threading, time
port, phase, n, out, conc, pause = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
outf = open(out, "a")
ids = [None] * n
errors = []
lock = threading.Lock()
nxt = [0]
def work():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    rnd = random.Random()
    while True:
        with lock:
            i = nxt[0]; nxt[0] += 1
        if i >= n: return
        fixed = os.environ.get("WF_POINTS", "").split(";")
        body = {"ownerId": "owner-" + phase, "pickupLocation": fixed[0] if len(fixed) == 2 else "%.5f,%.5f" % (47.5 + rnd.random() * 0.25, -122.45 + rnd.random() * 0.25),
                "dropOffLocation": fixed[1] if len(fixed) == 2 else "%.5f,%.5f" % (47.5 + rnd.random() * 0.25, -122.45 + rnd.random() * 0.25),
                "pickupTime": 1795770000000 + i * 60000, "deadline": "in an hour", "confirmationRequired": "None",
                "packageInfo": {"packageId": "pkg-%s-%d" % (phase, i), "size": "Small", "weight": 1.5, "tag": phase}}
        for attempt in range(5):
            try:
                c.request("POST", "/api/deliveryrequests", json.dumps(body), {"Content-Type": "application/json"})
                r = c.getresponse(); data = r.read()
                if r.status == 202:
                    ids[i] = json.loads(data)["deliveryId"]
                    with lock: outf.write(ids[i] + "\n"); outf.flush()
                    break
                err = "HTTP %d %s" % (r.status, data[:200])
            except Exception as e:
                err = repr(e); c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        else:
            with lock: errors.append(err)
        if pause: time.sleep(pause)
ts = [threading.Thread(target=work) for _ in range(conc)]
for t in ts: t.start()
for t in ts: t.join()
outf.close()
if errors:
    print("post_many: %d failed, first: %s" % (len(errors), errors[0]), file=sys.stderr); sys.exit(1)
PY
}

# post_one PHASE I -> prints the deliveryId of one new delivery
post_one() {
	local f=$wf_tmp/one.$$
	post_many "$1-$2" 1 "$f" 1 && cat "$f"
}

# events_since MS OUTFILE -> the lifecycle events produced since MS, as JSON lines
events_since() {
	"$bin/dronepipe" tail dronedelivery.delivery.events --from-time "$1" --timeout-ms 3000 >"$2" 2>/dev/null
}

# count_stage IDFILE EVENTSFILE STAGE... -> prints how many deliveries of IDFILE have an event of
# one of the stages in EVENTSFILE
count_stage() {
	python3 - "$@" <<'PY'
import json, sys
ids = set(open(sys.argv[1]).read().split())
stages = set(sys.argv[3:])
hit = set()
for line in open(sys.argv[2]):
    try: r = json.loads(line)
    except ValueError: continue
    v = r.get("value") or {}
    if r.get("key") in ids and v.get("stage") in stages: hit.add(r["key"])
print(len(hit))
PY
}

# all_reached IDFILE SINCE_MS STAGE... -> true when every delivery of IDFILE has one of the stages
all_reached() {
	local ids=$1 since=$2 f=$wf_tmp/reach.$$
	shift 2
	events_since "$since" "$f" || return 1
	[ "$(count_stage "$ids" "$f" "$@")" -eq "$(wc -l <"$ids")" ]
}

# wait_all TIMEOUT IDFILE SINCE_MS STAGE... -> polls all_reached every 500 ms
wait_all() {
	local timeout=$1 t0=$SECONDS
	shift
	until all_reached "$@"; do
		[ $((SECONDS - t0)) -ge "$timeout" ] && return 1
		sleep 0.5
	done
}

# mongo DB JSON -> one command on the test's MongoDB-API server (FerretDB), reply as JSON
mongo() {
	(. "$root/scripts/lib-stack.sh" && mongo_cmd "$mongo_port" "$1" "$2")
}
# mongo_count DB COLLECTION [FILTER] -> number of documents
mongo_count() {
	local r
	r=$(mongo "$1" "{\"count\": \"$2\", \"query\": ${3:-{\}}}") || return 1
	json_get "$r" 'd["n"]'
}
# metric PORT NAME_REGEX -> sum of the matching Prometheus samples of a service
metric() {
	curl -s -m 2 "http://127.0.0.1:$1/metrics" |
		awk -v re="$2" '$1 ~ re {s += $2} END {printf "%d\n", s}'
}

# committed_lag GROUP TOPIC... -> the group's committed lag summed over the topics; a topic the
# group has committed nothing on counts all its records
committed_lag() {
	local g=$1
	shift
	"$bin/dronepipe" --json topics "$@" --group "$g" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
lag = {t["topic"]: t["lag"] for x in d["groups"] if x["group"] == sys.argv[1] for t in x["topics"]}
print(sum(lag.get(t["topic"], t["records"]) for t in d["topics"]))' "$g"
}
# idle PORT... -> no consumer lag (as last sampled) and no handler running in the given services
idle() {
	local p
	for p in "$@"; do
		[ "$(metric "$p" '^dronepipe_consumer_lag_records')" = 0 ] || return 1
		[ "$(metric "$p" '^dronepipe_stage_records_in_progress')" = 0 ] || return 1
	done
}
# quiet PORT... -> true when the given services (the workflow, package and scheduler of this test)
# are idle, handled nothing new during the last second, and their groups have committed every
# record of their inputs (a pipeline at rest). The sampled lag and the counters alone are not
# enough: a first call to FerretDB, or a new producer's first acknowledgements, can take a
# second, and a record in hand moves no counter meanwhile.
quiet() {
	local p a b
	idle "$@" || return 1
	a=$(for p in "$@"; do metric "$p" '^dronepipe_stage_records_total'; done)
	sleep 1
	idle "$@" || return 1
	b=$(for p in "$@"; do metric "$p" '^dronepipe_stage_records_total'; done)
	[ "$a" = "$b" ] || return 1
	[ "$(committed_lag workflow dronedelivery.requests dronedelivery.package.events dronedelivery.drone.events)" = 0 ] &&
		[ "$(committed_lag package dronedelivery.package.commands)" = 0 ] &&
		[ "$(committed_lag scheduler dronedelivery.drone.commands)" = 0 ]
}

# reset_workflow_group -> the consumer group "workflow" back to the start of its inputs (the
# workflow must be stopped: the group must have no member)
reset_workflow_group() {
	local lib=$root/.deps/kafka-$(. "$root/scripts/versions.env" && echo "$KAFKA_VERSION")/lib
	java -cp "$lib/*" -Dlog4j.configuration="file:$wf_tmp/log4j.properties" \
		org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$DP_KAFKA_BROKERS" \
		--group workflow --reset-offsets --to-earliest --execute \
		--topic dronedelivery.requests --topic dronedelivery.package.events --topic dronedelivery.drone.events
}
# topic_config TOPIC ARGS... -> kafka-configs on a topic, e.g. --add-config max.message.bytes=256
# or --delete-config max.message.bytes
topic_config() {
	local lib=$root/.deps/kafka-$(. "$root/scripts/versions.env" && echo "$KAFKA_VERSION")/lib t=$1
	shift
	java -cp "$lib/*" -Dlog4j.configuration="file:$wf_tmp/log4j.properties" \
		kafka.admin.ConfigCommand --bootstrap-server "$DP_KAFKA_BROKERS" \
		--entity-type topics --entity-name "$t" --alter "$@"
}
printf 'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=%%p %%m%%n\n' >"$wf_tmp/log4j.properties"

# has_stage ID SINCE_MS STAGE -> true when the delivery has a lifecycle event of STAGE
has_stage() {
	"$bin/dronepipe" tail dronedelivery.delivery.events --from-time "$2" --key "$1" --timeout-ms 1000 2>/dev/null |
		grep -q "\"stage\":\"$3\""
}
# stage_field ID SINCE_MS STAGE FIELD -> the field of the delivery's first event of STAGE
stage_field() {
	"$bin/dronepipe" tail dronedelivery.delivery.events --from-time "$2" --key "$1" --timeout-ms 1000 2>/dev/null |
		python3 -c '
import json, sys
for l in sys.stdin:
    v = json.loads(l)["value"]
    if v["stage"] == sys.argv[1]:
        print(v[sys.argv[2]]); break' "$3" "$4"
}
# count_since IDFILE SINCE_MS STAGE... -> deliveries of IDFILE with an event of one of the stages
count_since() {
	local ids=$1 since=$2 f=$wf_tmp/count.$$
	shift 2
	events_since "$since" "$f" && count_stage "$ids" "$f" "$@"
}
# assignment_is ID DRONE STATUS -> the scheduler's answer for the delivery matches
assignment_is() {
	local a
	a=$(curl -s -m 2 "http://127.0.0.1:$scheduler_port/api/dronedeliveries/$1") || return 1
	[ "$(json_get "$a" 'd["droneId"]+"|"+d["status"]' 2>/dev/null)" = "$2|$3" ]
}

# dlq_keys OUTFILE -> the keys of every record of the dead-letter topics of the stages under test
dlq_keys() {
	local t
	for t in requests package.commands package.events drone.commands drone.events; do
		"$bin/dronepipe" tail "dronedelivery.$t.dlq" --from-beginning --timeout-ms 2000 2>/dev/null
	done | python3 -c '
import json, sys
for l in sys.stdin:
    try: print(json.loads(l)["key"])
    except Exception: print("?")' >"$1"
}

# mongo_find_json DB COLLECTION [FILTER] -> every document (one batch) as a JSON list
mongo_find_json() {
	mongo "$1" "{\"find\": \"$2\", \"filter\": ${3:-{\}}, \"batchSize\": 100000}" |
		python3 -c 'import json, sys; d = json.load(sys.stdin); print(json.dumps(d["cursor"]["firstBatch"]))'
}

# pycheck CODE ARGS... -> runs python with the helpers below (ids, events, stages, distinct,
# ); an assertion error fails it and is printed
wf_py_lib='
import json, re, sys
def ids(path):
    return [l.strip() for l in open(path) if l.strip()]
def events(path, keys=None):
    """deliveryId -> its lifecycle records in topic order (value + _at = produced_at header)"""
    out = {}
    for line in open(path):
        try: r = json.loads(line)
        except ValueError: continue
        if keys is not None and r.get("key") not in keys: continue
        v = dict(r.get("value") or {})
        v["_at"] = int(r["headers"].get("produced_at", 0))
        out.setdefault(r["key"], []).append(v)
    return out
def stages(evs):
    return [e["stage"] for e in evs]
def distinct(evs):
    """one record per eventId (re-emissions dropped), by version"""
    seen = {}
    for e in evs: seen.setdefault(e["eventId"], e)
    return sorted(seen.values(), key=lambda e: e["version"])
'
pycheck() {
	local code=$1
	shift
	python3 -c "$wf_py_lib
$code" "$@"
}

# check_stores PHASE IDFILE EVENTSFILE PACKAGEDB SCHEDULERDB -> one package document per delivery,
# one assignment per delivery with the drone of its Scheduled event, no drone held twice
check_stores() {
	local phase=$1 idf=$2 evf=$3 pdb=$4 sdb=$5
	mongo_find_json "$pdb" packages >"$wf_tmp/$phase.pkg"
	mongo_find_json "$sdb" assignments >"$wf_tmp/$phase.asg"
	mongo_find_json "$sdb" claims '{"state": "held"}' >"$wf_tmp/$phase.claims"
	check "$phase: exactly one package document per delivery" pycheck '
ours = ids(sys.argv[1]); docs = json.load(open(sys.argv[2]))
per = {}
for d in docs: per.setdefault(d["deliveryId"], []).append(d["_id"])
dup = {k: v for k, v in per.items() if len(v) > 1}
assert not dup, "deliveries with several package documents: %s" % list(dup.items())[:3]
missing = [k for k in ours if k not in per]
assert not missing, "%d deliveries without a package document" % len(missing)
assert len(docs) == len(ours), (len(docs), len(ours))' "$idf" "$wf_tmp/$phase.pkg"
	check "$phase: one assignment per delivery, the drone of its Scheduled event, no drone held twice" pycheck '
ours = set(ids(sys.argv[1])); asg = json.load(open(sys.argv[2])); claims = json.load(open(sys.argv[3]))
ev = events(sys.argv[4], ours)
by = {a["_id"]: a for a in asg}
for k in ours:
    s = [x for x in ev.get(k, []) if x["stage"] == "Scheduled"]
    if not s: continue
    assert k in by, "no assignment for %s" % k
    assert by[k]["droneId"] == s[0]["droneId"], (k, by[k]["droneId"], s[0]["droneId"])
    fin = [x for x in ev[k] if x["stage"] in ("Cancelled", "Failed", "Completed")]
    assert by[k]["status"] == ("released" if fin else "assigned"), (k, by[k]["status"])
held = [a["droneId"] for a in asg if a["status"] == "assigned"]
assert len(held) == len(set(held)), "drones assigned twice: %d" % (len(held) - len(set(held)))
cd = [c["droneId"] for c in claims]; cdel = [c["deliveryId"] for c in claims]
assert len(cd) == len(set(cd)), "drones with two held claims"
assert len(cdel) == len(set(cdel)), "deliveries with two held claims"
assert sorted(held) == sorted(cd), "held claims differ from the assigned drones"' "$idf" "$wf_tmp/$phase.asg" "$wf_tmp/$phase.claims" "$evf"
}

# at_least IDFILE SINCE_MS N STAGE... -> true when N deliveries of IDFILE have one of the stages
at_least() {
	local ids=$1 since=$2 n=$3
	shift 3
	[ "$(count_since "$ids" "$since" "$@")" -ge "$n" ]
}
# metric_at_least PORT NAME_REGEX N
metric_at_least() {
	[ "$(metric "$1" "$2")" -ge "$3" ]
}
