#!/usr/bin/env bash
# Integration test of dronepipe-delivery against the real broker and Redis (scripts/test-it.sh
# provides them; or set DP_KAFKA_BROKERS, DP_REDIS_URL, DP_TEST_STACK_DIR by hand): lifecycle and
# telemetry records produced with build/tests/it/delivery_feed, then every route's answer, the
# live stream, exactly one history entry per event when everything is produced twice, Redis
# stopped (503, nothing dead-lettered, applied after it is back), kill -9 mid-flight and restart,
# and FLUSHALL + replay of the group from the beginning rebuilding every key identically.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
trap stop_children EXIT

port=18281
base=http://127.0.0.1:$port
feed=$build/tests/it/delivery_feed
redis_url=${DP_REDIS_URL:-redis://127.0.0.1:6379}
rhostport=${redis_url#redis://}
rhostport=${rhostport%%/*}
rport=${rhostport##*:}
stack_dir=${DP_TEST_STACK_DIR:-${DP_STACK_DIR:-}}
rc() { redis-cli -h 127.0.0.1 -p "$rport" --raw "$@"; }
run=$(python3 -c 'import uuid; print(uuid.uuid4().hex[:8])')
owner="it-owner-$run"
# The records have fixed times (2026-11-27, see gen), older than the default retention of 7
# days: until the bounds section, the service keeps records for 10 years.
svc_env=(DP_HTTP_PORT=$port DP_REDIS_URL="$redis_url" DP_COMMIT_INTERVAL_MS=200
	DP_DELIVERY_RETENTION_S=315360000
	DP_RETRY_BACKOFF_MAX_MS=1000 DP_KAFKA_PROP_session_timeout_ms=6000
	DP_KAFKA_PROP_heartbeat_interval_ms=1000 DP_LOG_LEVEL=info)
svc_pid=
start_delivery() {
	start_service dronepipe-delivery "delivery-$1" "${svc_env[@]}" >/dev/null
	svc_pid=${children[-1]}
}

[ -x "$feed" ] || {
	bad "build/tests/it/delivery_feed is built"
	finish test_delivery
	exit 1
}

# gen ID STAGES TELEMETRY [SEQ_FROM] -> JSON lines for delivery_feed. STAGES: how many lifecycle
# events of Created, Scheduled, HeadedToPickup, HeadedToDropoff, Completed; TELEMETRY: records
# (the first half flies to the pickup, the rest to the drop-off, the last of a completed flight
# is Arrived). Times are fixed (2026-11-27T10:00Z on), so every run writes the same values;
# GEN_T0=<epoch ms> sets another start.
gen() {
	python3 - "$@" "$owner" <<'PY'
import json, os, sys, uuid
did, nstages, ntm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
owner = sys.argv[-1]
t0 = int(os.environ.get("GEN_T0", 1795773600000))  # 2026-11-27T10:00:00Z
pickup = {"latitude": 47.61, "longitude": -122.33, "altitude": 0.0}
dropoff = {"latitude": 47.66, "longitude": -122.30, "altitude": 0.0}
start = {"latitude": 47.58, "longitude": -122.38}
stages = ["Created", "Scheduled", "HeadedToPickup", "HeadedToDropoff", "Completed"]
def lc(v):
    st = stages[v - 1]
    e = {"eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, did + "/lc/" + str(v))), "deliveryId": did,
         "stage": st, "version": v, "time": t0 + v * 60000, "causationId": None,
         "requestedAt": t0, "ownerId": owner, "pickupLocation": "47.61,-122.33",
         "pickup": pickup, "dropOffLocation": "47.66,-122.30", "dropoff": dropoff,
         "pickupTime": t0 + 3600000, "deadline": "today", "expedited": True,
         "confirmationRequired": "None", "packageId": "pkg-" + did[:8],
         "droneId": None if v < 2 else "drone-7", "pickupEta": None, "deliveryEta": None,
         "reason": None}
    if v >= 2:
        e["pickupEta"] = t0 + 20 * 60000
        e["deliveryEta"] = t0 + 40 * 60000
    return {"schema": "DeliveryLifecycle", "value": e}
def tm(seq):
    half = ntm // 2
    if seq < half:
        f, a, b, phase = (seq + 1) / half, start, pickup, "ToPickup"
    else:
        f, a, b, phase = (seq - half + 1) / (ntm - half), pickup, dropoff, "ToDropoff"
    if seq == ntm - 1 and nstages >= 5:
        phase = "Arrived"
    pos = {k: a[k] + (b[k] - a[k]) * f for k in ("latitude", "longitude")}
    return {"schema": "DroneTelemetry", "value": {
        "eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, did + "/tm/" + str(seq))), "deliveryId": did,
        "droneId": "drone-7", "phase": phase, "latitude": pos["latitude"],
        "longitude": pos["longitude"], "altitude": 120.0, "speedMps": 12.5,
        "time": t0 + 3 * 60000 + seq * 1000, "seq": seq, "pickup": pickup, "dropoff": dropoff}}
out = [lc(v) for v in range(1, min(nstages, 3) + 1)]
half = ntm // 2
out += [tm(s) for s in range(0, half)]
if nstages >= 4:
    out.append(lc(4))
out += [tm(s) for s in range(half, ntm)] if nstages >= 4 else []
if nstages >= 5:
    out.append(lc(5))
for o in out:
    print(json.dumps(o))
PY
}

# snapshot -> every dp:* key with its type, expiry and full content, sorted (the state to compare)
snapshot() {
	local k t
	rc --scan --pattern 'dp:*' | sort | while read -r k; do
		t=$(rc TYPE "$k")
		printf '== %s %s expires-at %s\n' "$k" "$t" "$(rc PEXPIRETIME "$k")"
		case $t in
		hash) rc HGETALL "$k" | paste - - | sort ;;
		list) rc LRANGE "$k" 0 -1 ;;
		set) rc SMEMBERS "$k" | sort ;;
		string) rc GET "$k" ;;
		esac
	done
}
dlq_count() { # records on both dead-letter topics of the group
	local n=0 t c
	for t in dronedelivery.delivery.events.dlq dronedelivery.drone.telemetry.dlq; do
		c=$(kcat -C -b "$DP_KAFKA_BROKERS" -t "$t" -o beginning -e -q -f '%o\n' 2>/dev/null | wc -l)
		n=$((n + c))
	done
	echo "$n"
}
get() { curl -s -m 5 "$base$1"; }
stage_is() { [ "$(json_get "$(get "/api/deliveries/$1/status")" 'd["stageName"]' 2>/dev/null)" = "$2" ]; }
tm_seq_is() { [ "$(rc HGET "dp:dlv:{$1}:tm" seq)" = "$2" ]; }
tm_seen() { [ "$(rc EXISTS "dp:dlv:{$1}:tm")" = 1 ]; }

a=$(python3 -c 'import uuid; print(uuid.uuid4())')
b=$(python3 -c 'import uuid; print(uuid.uuid4())')
c=$(python3 -c 'import uuid; print(uuid.uuid4())')
d=$(python3 -c 'import uuid; print(uuid.uuid4())')
e=$(python3 -c 'import uuid; print(uuid.uuid4())')

start_delivery 1
wait_until 30 curl -sf "$base/readyz" || bad "delivery ready"

# --- A completes; B is in flight to the pickup ------------------------------------------------
{ gen "$a" 5 10; gen "$b" 3 4; } >"$logdir/delivery-feed-1.jsonl"
"$feed" <"$logdir/delivery-feed-1.jsonl" >/dev/null
expect "feed: A (5 lifecycle events, 10 telemetry) and B (3 events, 4 telemetry) acknowledged"
wait_until 30 stage_is "$a" Completed
expect "A reaches Completed"
wait_until 20 tm_seq_is "$b" 1
expect "B's telemetry applied"

r=$(get "/api/deliveries/$a")
check "GET /api/deliveries/{id} -> the Delivery JSON" python3 - "$r" "$a" "$owner" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
assert d["id"] == sys.argv[2] and d["owner"] == {"userId": sys.argv[3], "accountId": sys.argv[3]}, d
assert d["pickup"] == {"altitude": 0.0, "latitude": 47.61, "longitude": -122.33}, d["pickup"]
assert d["dropoff"]["latitude"] == 47.66 and d["deadline"] == "today" and d["expedited"] is True
assert d["confirmationRequired"] == "None" and d["droneId"] == "drone-7"
assert d["packageId"] == "pkg-" + sys.argv[2][:8] and d["stage"] == 4 and d["stageName"] == "Completed"
PY
check "GET /api/deliveries/public/{id} -> the same Delivery" [ "$(get "/api/deliveries/public/$a")" = "$r" ]
hdr=$(curl -s -o /dev/null -D - -X POST "$base/api/deliveries/public/$a")
[[ "$hdr" == *" 405"* && "$hdr" == *"Allow: GET"* ]]
expect "POST /api/deliveries/public/{id} -> 405 with Allow: GET"
check "DELETE /api/deliveries/{id} -> 405" [ "$(http_code -X DELETE "$base/api/deliveries/$a")" = 405 ]
check "GET /owner -> userId/accountId" [ "$(get "/api/deliveries/$a/owner")" = "{\"userId\":\"$owner\",\"accountId\":\"$owner\"}" ]
r=$(curl -s -w '|%{http_code}|%{content_type}' "$base/api/deliveries/nope-$run/status")
[[ "$r" == *'|404|application/problem+json' && "$r" == *"nope-$run"* ]]
expect "unknown delivery -> 404 problem+json naming it"

r=$(get "/api/deliveries/$a/status")
check "status of a completed delivery: stage 4, position = last telemetry, no ETAs" python3 - "$r" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
assert s["stage"] == 4 and s["stageName"] == "Completed", s
loc = s["lastKnownLocation"]
assert abs(loc["latitude"] - 47.66) < 1e-9 and abs(loc["longitude"] + 122.30) < 1e-9 and loc["altitude"] == 120.0, loc
assert s["pickupETA"] is None and s["deliveryETA"] is None, s
assert s["updatedAt"] == "2026-11-27T10:05:00.000Z", s["updatedAt"]
PY
r=$(get "/api/deliveries/$b/status")
check "status in flight: stage 2, ETAs = now + remaining distance / telemetry speed" python3 - "$r" <<'PY'
import json, math, sys, time
from datetime import datetime
s = json.loads(sys.argv[1])
assert s["stage"] == 2 and s["stageName"] == "HeadedToPickup" and s["phase"] == "ToPickup", s
def dist(a, b):
    R = 6371008.8
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dp, dl = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R * math.asin(math.sqrt(h))
loc = s["lastKnownLocation"]
here, pickup, dropoff = (loc["latitude"], loc["longitude"]), (47.61, -122.33), (47.66, -122.30)
assert abs(here[0] - 47.61) < 1e-9, here  # seq 1 of 4: at the pickup
ts = lambda t: datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
now = time.time()
want_p = now + dist(here, pickup) / 12.5
want_d = now + (dist(here, pickup) + dist(pickup, dropoff)) / 12.5
assert abs(ts(s["pickupETA"]) - want_p) < 5, (s["pickupETA"], want_p)
assert abs(ts(s["deliveryETA"]) - want_d) < 5, (s["deliveryETA"], want_d)
assert ts(s["deliveryETA"]) - now > 400, "the drop-off leg is ~6 km at 12.5 m/s"
PY

r=$(get "/api/deliveries/$a/history")
check "history: one entry per lifecycle event, in order" python3 - "$r" <<'PY'
import json, sys
h = json.loads(sys.argv[1])
assert [e["version"] for e in h] == [1, 2, 3, 4, 5], h
assert [e["stageName"] for e in h] == ["Created", "Scheduled", "HeadedToPickup", "HeadedToDropoff", "Completed"]
assert [e["stage"] for e in h] == [0, 0, 2, 3, 4]
assert h[0]["time"] == "2026-11-27T10:01:00.000Z" and "drone-7" in h[1]["detail"], h
PY

# --- summary --------------------------------------------------------------------------------
check "summary counts the owner's deliveries of the month" [ "$(get "/api/deliveries/summary?ownerId=$owner&year=2026&month=11")" = '{"count":2}' ]
check "summary of another month -> 0" [ "$(get "/api/deliveries/summary?ownerId=$owner&year=2026&month=10")" = '{"count":0}' ]
r=$(curl -s -w '|%{http_code}' "$base/api/deliveries/summary?ownerId=$owner&month=x1")
check "summary without year, month not an integer -> 400 naming both" python3 - "$r" <<'PY'
import json, sys
body, code = sys.argv[1].rsplit("|", 1)
assert code == "400", code
fields = {e["field"]: e["reason"] for e in json.loads(body)["errors"]}
assert set(fields) == {"year", "month"}, fields
PY
r=$(curl -s -w '|%{http_code}' "$base/api/deliveries/summary?year=2026&month=13")
[[ "$r" == *'|400' && "$r" == *ownerId* && "$r" == *month* ]]
expect "summary without ownerId, month 13 -> 400 naming ownerId and month"

# --- tracking page --------------------------------------------------------------------------
r=$(curl -s -D "$logdir/delivery-track.h" "$base/track/$a")
js=$(curl -s -D "$logdir/delivery-track-js.h" "$base/assets/track.js")
css=$(curl -s -D "$logdir/delivery-track-css.h" "$base/assets/track.css")
grep -qi '^Content-Type: text/html' "$logdir/delivery-track.h" && [[ "$r" == *'<script src="/assets/track.js">'* && "$r" == *"<svg"* && "$js" == *EventSource* ]]
expect "GET /track/{id} -> an HTML page with an SVG map, its script (an EventSource) served by the service"
grep -qi '^Content-Type: text/javascript' "$logdir/delivery-track-js.h" && grep -qi '^Content-Type: text/css' "$logdir/delivery-track-css.h" && [[ "$css" == *".stage"* ]]
expect "/assets/track.js and /assets/track.css answer with their types"
! grep -Eqi '(src|href)="?(https?:)?//|@import|url\(' <<<"$r$js$css"
expect "the page loads nothing from elsewhere (no external script, style or font)"
! grep -Eqi '<script>|<style|style=' <<<"$r"
expect "the page holds no inline script, style element or style attribute"
check "the page's element ids are unique" python3 -c '
import collections, re, sys
ids = re.findall(r"\bid=\"([^\"]+)\"", sys.argv[1])
assert ids and not [i for i, n in collections.Counter(ids).items() if n > 1], ids' "$r"
for h in delivery-track.h delivery-track-js.h delivery-track-css.h; do
	check "$h: a Content-Security-Policy of 'self' only, no unsafe-inline, no framing; nosniff; no referrer" python3 - "$logdir/$h" <<'PY'
import sys
head = {}
for line in open(sys.argv[1], newline=""):
    if ":" in line:
        k, v = line.split(":", 1)
        head[k.strip().lower()] = v.strip()
csp = {d.split()[0]: d.split()[1:] for d in head["content-security-policy"].split(";") if d.strip()}
assert csp["default-src"] == ["'none'"], csp
assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"], csp
assert csp["frame-ancestors"] == ["'none'"] and csp["connect-src"] == ["'self'"], csp
assert "unsafe-inline" not in head["content-security-policy"], head["content-security-policy"]
assert head["x-content-type-options"] == "nosniff", head
assert head["referrer-policy"] == "no-referrer", head
PY
done

# --- live stream ----------------------------------------------------------------------------
r=$(curl -s -N -m 5 "$base/api/deliveries/$a/events")
[[ "$r" == *"event: status"* && "$r" == *'"stageName":"Completed"'* && "$r" == *"event: end"* ]]
expect "events of a finished delivery: its status, then end, then the stream closes"
curl -s -N -m 20 "$base/api/deliveries/$b/events" >"$logdir/delivery-sse-b.txt" &
sse_pid=$!
# the stream is registered before its first status is read and sent
wait_until 10 grep -q "event: status" "$logdir/delivery-sse-b.txt"
expect "the stream of B opens with B's current status"
gen "$b" 5 4 | tail -n 4 >"$logdir/delivery-feed-2.jsonl"
head -n 2 "$logdir/delivery-feed-2.jsonl" | "$feed" >/dev/null # picked up, one position
wait_until 10 grep -q HeadedToDropoff "$logdir/delivery-sse-b.txt"
expect "the open stream shows B picked up"
tail -n 2 "$logdir/delivery-feed-2.jsonl" | "$feed" >/dev/null # arrived, completed
expect "feed: the rest of B's flight acknowledged"
wait "$sse_pid"
check "the stream of B ended by itself after Completed (curl exit $?)" [ $? -eq 0 ]
check "the stream carried B's progress: HeadedToPickup ... HeadedToDropoff ... Completed, end" python3 - "$logdir/delivery-sse-b.txt" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
assert text.startswith("retry: 3000\n\n"), text[:40]
frames = [f for f in text.split("\n\n") if f.startswith("event: status")]
ids, names = [], []
for f in frames:
    lines = dict(l.split(": ", 1) for l in f.split("\n"))
    ids.append(tuple(int(x) for x in lines["id"].split(".")))
    names.append(json.loads(lines["data"])["stageName"])
assert ids == sorted(set(ids)), ids
assert names[0] == "HeadedToPickup" and names[-1] == "Completed" and "HeadedToDropoff" in names, names
assert text.rstrip("\n").endswith("event: end\ndata: {}"), text[-60:]
PY

# --- everything again: nothing changes --------------------------------------------------------
snapshot >"$logdir/delivery-snap-1.txt"
cat "$logdir/delivery-feed-1.jsonl" "$logdir/delivery-feed-2.jsonl" | "$feed" >/dev/null
expect "feed: every record produced a second time"
sleep 2 # the duplicates are applied (or not) within this time; nothing signals "ignored"
snapshot >"$logdir/delivery-snap-2.txt"
check "duplicates change no key (history still one entry per event)" diff -q "$logdir/delivery-snap-1.txt" "$logdir/delivery-snap-2.txt"
check "history of A has exactly 5 entries" [ "$(rc LLEN "dp:dlv:{$a}:history")" = 5 ]

# --- kill -9 mid-flight, restart: same final state --------------------------------------------
gen "$c" 5 400 >"$logdir/delivery-feed-3.jsonl"
"$feed" <"$logdir/delivery-feed-3.jsonl" >/dev/null &
feed_pid=$!
wait_until 20 tm_seen "$c" # C is being applied
kill -9 "$svc_pid"
wait "$feed_pid"
expect "feed: C (400 telemetry records) acknowledged"
partial=$(rc HGET "dp:dlv:{$c}:tm" seq)
start_delivery 2
wait_until 40 stage_is "$c" Completed && wait_until 20 tm_seq_is "$c" 399
expect "after kill -9 (at telemetry seq $partial) and restart, C completes with its last position"
check "C's history has exactly 5 entries" [ "$(rc LLEN "dp:dlv:{$c}:history")" = 5 ]
check "C's history is in version order" [ "$(rc LRANGE "dp:dlv:{$c}:history" 0 -1 | python3 -c 'import json,sys; print([json.loads(l)["version"] for l in sys.stdin])')" = "[1, 2, 3, 4, 5]" ]

# --- Redis down: reads 503, the stage waits, nothing dead-lettered -----------------------------
conf=$stack_dir/conf/redis.conf
dlq_before=$(dlq_count) # the service has handled everything on the topics by now
if [ -n "$stack_dir" ] && [ -f "$conf" ]; then
	rc SHUTDOWN >/dev/null 2>&1
	wait_until 10 bash -c "! redis-cli -p $rport ping" || bad "redis stopped"
	r=$(curl -s -w '|%{http_code}' "$base/api/deliveries/$a/status")
	[[ "$r" == *'|503' && "$r" == *"unavailable"* ]]
	expect "Redis down: a read answers 503 with the reason"
	check "Redis down: /readyz -> 503" [ "$(http_code "$base/readyz")" = 503 ]
	gen "$d" 2 0 | "$feed" >/dev/null
	expect "feed: D produced while Redis is down"
	retried() { curl -s "$base/metrics" | grep -q '^dronepipe_stage_retries_total{group="delivery",topic="dronedelivery.delivery.events"} [1-9]'; }
	wait_until 15 retried
	expect "Redis down: the stage retries D's record (partition paused, offset kept)"
	# same config, detached; it writes the stack's pid file itself, so `stack.sh down` stops it
	(cd / && redis-server "$conf" --daemonize yes --pidfile "$stack_dir/pids/redis.pid" \
		--logfile "$stack_dir/logs/redis.log" >/dev/null)
	wait_until 20 rc ping || bad "redis restarted"
	wait_until 30 stage_is "$d" Scheduled
	expect "Redis back: D applied (the stage retried, nothing lost)"
	check "D's history has exactly 2 entries" [ "$(rc LLEN "dp:dlv:{$d}:history")" = 2 ]
	check "reads answer 200 again" [ "$(http_code "$base/api/deliveries/$a/status")" = 200 ]
else
	bad "Redis down test needs DP_TEST_STACK_DIR (the stack's redis.conf)"
fi
check "no record was dead-lettered" [ "$(dlq_count)" = "$dlq_before" ]

# --- SIGTERM while the record in hand cannot finish: exit 2 after DP_SHUTDOWN_TIMEOUT_MS -------
# Redis frozen (SIGSTOP), so E's handler waits on it (DP_REDIS_TIMEOUT_MS 60 s) and the stage
# cannot finish the record in hand; the watchdog ends the process with status 2 after 2 s, and
# E, not committed, is applied by the next instance.
redis_pid=$(cat "$stack_dir/pids/redis.pid" 2>/dev/null)
if [ -n "$redis_pid" ] && [ -d "/proc/$redis_pid" ]; then
	kill -TERM "$svc_pid"
	wait "$svc_pid" 2>/dev/null
	start_service dronepipe-delivery delivery-stuck "${svc_env[@]}" DP_REDIS_TIMEOUT_MS=60000 \
		DP_SHUTDOWN_TIMEOUT_MS=2000 >/dev/null
	svc_pid=${children[-1]}
	svc_ready() { [ "$(http_code "$base/readyz")" = 200 ]; }
	wait_until 30 svc_ready || bad "stuck: the service is ready"
	kill -STOP "$redis_pid"
	gen "$e" 2 0 | "$feed" >/dev/null
	expect "feed: E produced while Redis is frozen"
	in_hand() { curl -s -m 2 "$base/metrics" | grep -q '^dronepipe_stage_records_in_progress{group="delivery"} [1-9]'; }
	wait_until 20 in_hand
	expect "stuck: E's handler is waiting on Redis (records_in_progress 1)"
	t0=$SECONDS
	kill -TERM "$svc_pid"
	wait "$svc_pid"
	status=$?
	kill -CONT "$redis_pid"
	took=$((SECONDS - t0))
	check "stuck: SIGTERM -> exit status 2 (got $status) after $took s (timeout 2 s; Redis would answer after 60 s)" \
		[ "$status" = 2 -a "$took" -le 30 ]
	check "stuck: the log says shutdown_timeout" grep -q '"event":"shutdown_timeout"' "$logdir/delivery-stuck.log"
	wait_until 10 rc ping || bad "redis answers again"
	start_delivery 5
	wait_until 40 stage_is "$e" Scheduled
	expect "stuck: E applied by the next instance (nothing lost)"
	check "E's history has exactly 2 entries" [ "$(rc LLEN "dp:dlv:{$e}:history")" = 2 ]
else
	bad "stuck test needs the stack's Redis pid file"
fi

# --- FLUSHALL + replay of the group from the beginning: identical state ------------------------
snapshot >"$logdir/delivery-snap-3.txt"
kill -TERM "$svc_pid"
wait "$svc_pid" 2>/dev/null
rc FLUSHALL >/dev/null
# the operator's recovery procedure (README, Operations): dronepipe replay, per topic
{ "$bin/dronepipe" replay --group delivery --topic dronedelivery.delivery.events --to-earliest \
	--wait --wait-timeout 30s &&
	"$bin/dronepipe" replay --group delivery --topic dronedelivery.drone.telemetry --to-earliest \
		--wait --wait-timeout 30s; } >"$logdir/delivery-reset.log" 2>&1
expect "consumer group delivery reset to the earliest offsets"
start_delivery 3
same_state() { snapshot >"$logdir/delivery-snap-4.txt" && diff -q "$logdir/delivery-snap-3.txt" "$logdir/delivery-snap-4.txt"; }
wait_until 40 same_state
expect "FLUSHALL + replay from the beginning rebuilds every key identically ($(grep -c '^==' "$logdir/delivery-snap-3.txt") keys)"
[ -s "$logdir/delivery-snap-3.txt" ] || bad "the snapshot is not empty"

# --- a key Redis refuses (WRONGTYPE): P's records dead-lettered with the reason, the records ---
# around them in the same store call applied. Last, since a replay would now apply P.
nparts=$(kcat -L -b "$DP_KAFKA_BROKERS" -t dronedelivery.delivery.events -J |
	python3 -c 'import json, sys; print(len(json.load(sys.stdin)["topics"][0]["partitions"]))')
p=$(python3 -c 'import uuid; print(uuid.uuid4())')
# Q in P's partition (the producers' murmur2 partitioner, as the Java clients'), so Q's records
# come after P's in the batch
q=$(python3 - "$p" "$nparts" <<'PY'
import sys, uuid
def murmur2(data):
    m, h = 0x5BD1E995, 0x9747B28C ^ len(data)
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[4 * n4:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h = ((h ^ tail[0]) * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    return h ^ (h >> 15)
part = lambda key: (murmur2(key.encode()) & 0x7FFFFFFF) % int(sys.argv[2])
while True:
    q = str(uuid.uuid4())
    if part(q) == part(sys.argv[1]):
        print(q)
        break
PY
)
r=$(python3 -c 'import uuid; print(uuid.uuid4())')
rc SET "dp:dlv:{$p}" not-a-hash >/dev/null
dlq_before=$(dlq_count)
kill -TERM "$svc_pid" # produced while the service is down, polled together at its start
wait "$svc_pid" 2>/dev/null
{ gen "$p" 2 0; gen "$q" 2 0; gen "$r" 2 2; } | "$feed" >/dev/null
expect "feed: P (whose key holds a string), Q and R produced"
partition_of() { kcat -C -b "$DP_KAFKA_BROKERS" -t dronedelivery.delivery.events -o beginning -e -q \
	-f '%k %p\n' 2>/dev/null | awk -v k="$1" '$1 == k {print $2; exit}'; }
check "Q's records are in P's partition, after P's" [ "$(partition_of "$q")" = "$(partition_of "$p")" ]
svc_env+=(DP_STAGE_WORKERS=1) # one lane: P's and Q's records go to Redis in one call
start_delivery 6
dlq_reached() { [ "$(dlq_count)" -ge "$1" ]; }
wait_until 30 dlq_reached $((dlq_before + 2))
expect "P's 2 lifecycle events dead-lettered"
wait_until 30 stage_is "$q" Scheduled && wait_until 30 stage_is "$r" Scheduled && wait_until 20 tm_seq_is "$r" 0
expect "Q and R applied (R with its telemetry) though P's records failed among them"
check "exactly P's 2 events dead-lettered" [ "$(dlq_count)" = $((dlq_before + 2)) ]
kcat -C -b "$DP_KAFKA_BROKERS" -t dronedelivery.delivery.events.dlq -o beginning -e -q \
	-f '%k %h\n' 2>/dev/null | grep "^$p " >"$logdir/delivery-dlq-p.txt"
check "P's dead letters carry Redis's reason (WRONGTYPE)" [ "$(grep -c 'dp_error=redis: WRONGTYPE' "$logdir/delivery-dlq-p.txt")" = 2 ]
check "P's key still holds only the string (nothing written)" [ "$(rc GET "dp:dlv:{$p}")" = not-a-hash ]
check "P has no history" [ "$(rc EXISTS "dp:dlv:{$p}:history")" = 0 ]

# --- records the service cannot apply: each dead-lettered with a reason naming the problem, ---
# the good records after them applied. The service reads records itself (Avro views), so it must
# refuse what the decoder refuses: bytes that are not Avro, an Avro body cut short, a record of
# a schema it does not consume, a lifecycle event whose version is 0.
j=$(python3 -c 'import uuid; print(uuid.uuid4())') # garbage
k=$(python3 -c 'import uuid; print(uuid.uuid4())') # cut short
l=$(python3 -c 'import uuid; print(uuid.uuid4())') # another schema
m=$(python3 -c 'import uuid; print(uuid.uuid4())') # version 0
t=$(python3 -c 'import uuid; print(uuid.uuid4())') # good, after them
dlq_before=$(dlq_count)
printf 'not avro at all' | kcat -P -b "$DP_KAFKA_BROKERS" -t dronedelivery.delivery.events -k "$j"
kcat -C -b "$DP_KAFKA_BROKERS" -t dronedelivery.delivery.events -o beginning -e -q -f '%k\n' \
	2>/dev/null | grep -q "^$a$" || bad "A's records are on the topic"
kcat -C -b "$DP_KAFKA_BROKERS" -t dronedelivery.delivery.events -o beginning -e -q \
	-f '%k|%R%s' 2>/dev/null | python3 -c '
import sys, struct
data, key = sys.stdin.buffer.read(), sys.argv[1].encode() + b"|"
at = data.index(key) + len(key)
(n,) = struct.unpack(">I", data[at:at + 4])
sys.stdout.buffer.write(data[at + 4:at + 4 + n - 7])' "$a" >"$logdir/delivery-cut.bin"
kcat -P -b "$DP_KAFKA_BROKERS" -t dronedelivery.delivery.events -k "$k" "$logdir/delivery-cut.bin"
{
	printf '{"schema": "DroneReleased", "value": {"eventId": "e-%s", "deliveryId": "%s", "causationId": null, "droneId": "drone-7", "releasedAt": 1795773600000, "reason": null}}\n' "$l" "$l"
	gen "$m" 1 0 | python3 -c 'import json, sys
for line in sys.stdin:
    d = json.loads(line); d["value"]["version"] = 0; print(json.dumps(d))'
	gen "$t" 2 0
} | "$feed" >/dev/null
expect "feed: a record of another schema, a version-0 event and T's good events produced"
wait_until 30 dlq_reached $((dlq_before + 4))
expect "the 4 poison records dead-lettered"
wait_until 30 stage_is "$t" Scheduled
expect "T's events, produced after them, applied"
check "nothing else dead-lettered" [ "$(dlq_count)" = $((dlq_before + 4)) ]
kcat -C -b "$DP_KAFKA_BROKERS" -t dronedelivery.delivery.events.dlq -o beginning -e -q \
	-f '%k %h\n' 2>/dev/null >"$logdir/delivery-dlq-poison.txt"
reason_of() { grep "^$1 " "$logdir/delivery-dlq-poison.txt" | sed -n 's/.*dp_error=\(.*\),dp_error_class=.*/\1/p' | head -1; }
check "garbage: 'not Avro single-object encoding'" grep -q 'undecodable record: not Avro single-object encoding' <<<"$(reason_of "$j")"
check "cut short: undecodable, names the schema file" grep -q 'undecodable record: DeliveryLifecycle.v1.avsc: ' <<<"$(reason_of "$k")"
check "another schema: 'DroneReleased is not a delivery input'" grep -q 'DroneReleased is not a delivery input' <<<"$(reason_of "$l")"
check "version 0: 'a version >= 1'" grep -q 'a version >= 1' <<<"$(reason_of "$m")"
check "no poison record wrote a key" [ "$(rc EXISTS "dp:dlv:{$j}" "dp:dlv:{$k}" "dp:dlv:{$l}" "dp:dlv:{$m}")" = 0 ]

. "$(dirname "$0")/lib/delivery_bounds.sh"

finish test_delivery
