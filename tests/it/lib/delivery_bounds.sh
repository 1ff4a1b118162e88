# Part of tests/it/test_delivery.sh (sourced at its end, with its helpers and its service):
# the delivery store's bounds and its holes closed, as a user notices them.
#   history   capped at DP_DELIVERY_HISTORY_MAX: the latest entries, in order;
#   expiry    every key of a delivery (redis-cli TTL) expires the retention after its latest
#             update; a replay of records older than the retention brings nothing back;
#   absurd    telemetry with a position out of range, NaN or infinite, a negative or implausible
#             seq, a time days ahead, and a deliveryId over the key limit: dead-lettered with a
#             reason naming the field; the good record after them applied;
#   OOM       Redis at maxmemory: /readyz 503 naming OOM, the failures counted and logged at
#             warn once per backoff step, nothing dead-lettered; memory back: the record applied;
#   frozen    Redis stopped (SIGSTOP): /healthz and /readyz answer within a second throughout,
#             /readyz 503 naming Redis once a call timed out; SIGCONT: ready again.

uuid() { python3 -c 'import uuid; print(uuid.uuid4())'; }
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }
metric() { # metric NAME_WITH_LABELS -> its value (0 when absent)
	curl -s -m 2 "$base/metrics" | awk -v m="$1" 'index($0, m " ") == 1 {print int($2); f = 1} END {if (!f) print 0}'
}
ready_code() { curl -s -o /dev/null -m 1 -w '%{http_code}' "$base/readyz"; }
ready200() { [ "$(ready_code)" = 200 ]; }

kill -TERM "$svc_pid"
wait "$svc_pid" 2>/dev/null
# later assignments win: the default retention (7 days), a short history, a short Redis timeout
svc_env+=(DP_DELIVERY_RETENTION_S=604800 DP_DELIVERY_HISTORY_MAX=3 DP_REDIS_TIMEOUT_MS=500
	DP_RETRY_BACKOFF_MIN_MS=200 DP_RETRY_BACKOFF_MAX_MS=500)
start_delivery 7
wait_until 30 curl -sf "$base/readyz" || bad "bounds: the service is ready"

# --- history capped, every key with an expiry ---------------------------------------------------
h=$(uuid)
t0=$(($(now_ms) - 3600000)) # an hour ago
GEN_T0=$t0 gen "$h" 5 4 | "$feed" >/dev/null
wait_until 30 stage_is "$h" Completed && wait_until 20 tm_seq_is "$h" 3
expect "bounds: H (times of the last hour) applied"
check "history capped at DP_DELIVERY_HISTORY_MAX=3: the latest three entries, in order" \
	[ "$(get "/api/deliveries/$h/history" | python3 -c 'import json, sys; print([e["version"] for e in json.load(sys.stdin)])')" = "[3, 4, 5]" ]
check "the history list in Redis holds 3 entries" [ "$(rc LLEN "dp:dlv:{$h}:history")" = 3 ]
want=$((t0 + 300000 + 604800000)) # H's latest update (Completed, t0 + 5 min) + 7 days
for k in "dp:dlv:{$h}" "dp:dlv:{$h}:history" "dp:dlv:{$h}:tm"; do
	ttl=$(rc TTL "$k")
	check "$k has a TTL (redis-cli TTL $ttl s) ending 7 days after H's latest update ($(rc PEXPIRETIME "$k"), want $want)" \
		[ "$ttl" -gt 0 -a "$ttl" -le 604800 -a "$(rc PEXPIRETIME "$k")" = "$want" ]
done
ym=$(python3 -c 'import sys, time; print(time.strftime("%Y-%m", time.gmtime(int(sys.argv[1]) / 1000)))' "$t0")
ttl=$(rc TTL "dp:summary:$ym:$owner")
check "the owner's summary set of $ym has a TTL too ($ttl s)" [ "$ttl" -gt 0 -a "$ttl" -le 604800 ]

# --- records older than the retention: not applied, nothing brought back -----------------------
# A's keys (times of 2026-11-27) were kept by the 10-year retention. Delete them, as Redis does
# once they expire, and produce A's records again (a replay): older than 7 days, none applies,
# where "newer than stored" alone would rebuild A from nothing.
rc DEL "dp:dlv:{$a}" "dp:dlv:{$a}:history" "dp:dlv:{$a}:tm" >/dev/null
expired_before=$(metric 'dronepipe_delivery_applied_total{kind="lifecycle",outcome="expired"}')
gen "$a" 5 10 | "$feed" >/dev/null
expired_now() { [ "$(metric 'dronepipe_delivery_applied_total{kind="lifecycle",outcome="expired"}')" -ge $((expired_before + 5)) ]; }
wait_until 30 expired_now
expect "bounds: A's 5 lifecycle events produced again are counted expired"
check "no key of A came back" [ "$(rc EXISTS "dp:dlv:{$a}" "dp:dlv:{$a}:history" "dp:dlv:{$a}:tm")" = 0 ]
check "A's status answers 404" [ "$(http_code "$base/api/deliveries/$a/status")" = 404 ]

# --- absurd telemetry and an over-long deliveryId: dead-lettered naming the field --------------
z=$(uuid)
long=$(python3 -c 'import sys; print(("L" * 513)[:513 - len(sys.argv[1])] + sys.argv[1])' "$run")
dlq_before=$(dlq_count)
tmline() { # tmline SEQ [FIELD=JSON ...] -> one telemetry line for Z (time: now)
	python3 - "$z" "$(now_ms)" "$@" <<'PY'
import json, sys, uuid
z, now, seq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
v = {"eventId": str(uuid.uuid4()), "deliveryId": z, "droneId": "drone-7", "phase": "ToPickup",
     "latitude": 47.6123456789, "longitude": -122.3456789012, "altitude": 120.0, "speedMps": 12.5,
     "time": now, "seq": seq, "pickup": {"latitude": 47.61, "longitude": -122.33, "altitude": 0.0},
     "dropoff": {"latitude": 47.66, "longitude": -122.30, "altitude": 0.0}}
for kv in sys.argv[4:]:
    k, val = kv.split("=", 1)
    v[k] = json.loads(val)
    if k == "time_ahead_ms":
        v["time"] = now + v.pop(k)
print(json.dumps({"schema": "DroneTelemetry", "value": v}))
PY
}
{ GEN_T0=$t0 gen "$z" 3 0; tmline 0; } | "$feed" >/dev/null
wait_until 20 tm_seq_is "$z" 0
expect "bounds: Z in flight with its first position"
{
	tmline 1 latitude=91
	tmline 1 latitude=-90.5
	tmline 1 longitude=180.5
	tmline 1 longitude=-181
	tmline 1 altitude=1e9
	tmline -1
	tmline 1000000000000000
	tmline 1 time_ahead_ms=172800000
	gen "$long" 1 0
} | "$feed" >/dev/null
# NaN and infinity cannot be written as JSON: Z's first record with its latitude's 8 bytes
# replaced, and with its longitude's (the record reader refuses them already, naming the field;
# produced to Z's partition with the producers' murmur2 partitioner, before Z's good seq 2)
kcat -C -b "$DP_KAFKA_BROKERS" -t dronedelivery.drone.telemetry -o beginning -e -q \
	-f '%k|%R%s' 2>/dev/null >"$logdir/delivery-tm-raw.bin"
python3 - "$z" "$logdir/delivery-tm-raw.bin" "$logdir/delivery-nan.bin" "$logdir/delivery-inf.bin" <<'PY'
import struct, sys
data, key = open(sys.argv[2], "rb").read(), sys.argv[1].encode() + b"|"
at = data.index(key) + len(key)
(n,) = struct.unpack(">I", data[at:at + 4])
value = data[at + 4:at + 4 + n]
lat, lon = struct.pack("<d", 47.6123456789), struct.pack("<d", -122.3456789012)
assert value.count(lat) == 1 and value.count(lon) == 1
open(sys.argv[3], "wb").write(value.replace(lat, struct.pack("<d", float("nan"))))
open(sys.argv[4], "wb").write(value.replace(lon, struct.pack("<d", float("inf"))))
PY
kcat -P -b "$DP_KAFKA_BROKERS" -X partitioner=murmur2_random -t dronedelivery.drone.telemetry \
	-k "$z" "$logdir/delivery-nan.bin" "$logdir/delivery-inf.bin"
tmline 2 | "$feed" >/dev/null
expect "feed: 10 absurd telemetry records, a lifecycle event with a 513-byte deliveryId, then Z's good seq 2"
wait_until 30 dlq_reached $((dlq_before + 11))
expect "the 11 absurd records dead-lettered"
wait_until 20 tm_seq_is "$z" 2
expect "Z's good record after them applied (seq 2)"
check "nothing else dead-lettered" [ "$(dlq_count)" = $((dlq_before + 11)) ]
check "Z's stored position is the good one" [ "$(rc HGET "dp:dlv:{$z}:tm" latitude)" = 47.6123456789 ]
kcat -C -b "$DP_KAFKA_BROKERS" -t dronedelivery.drone.telemetry.dlq -o beginning -e -q \
	-f '%k %h\n' 2>/dev/null | grep "^$z " >"$logdir/delivery-dlq-absurd.txt"
for want in 'telemetry latitude 91 is outside [-90, 90]' 'telemetry latitude -90.5 is outside' \
	'telemetry longitude 180.5 is outside [-180, 180]' 'telemetry longitude -181 is outside' \
	'telemetry altitude 1000000000 is outside' 'telemetry seq -1 is negative' \
	'telemetry seq 1000000000000000 is beyond any plausible flight' \
	'is more than 24 h ahead of this service' 'undecodable record: latitude: nan cannot be' \
	'undecodable record: longitude: inf cannot be'; do
	check "dead letter with the reason '$want'" grep -qF -- "$want" "$logdir/delivery-dlq-absurd.txt"
done
kcat -C -b "$DP_KAFKA_BROKERS" -t dronedelivery.delivery.events.dlq -o beginning -e -q \
	-f '%k %h\n' 2>/dev/null | grep "^$long " >"$logdir/delivery-dlq-long.txt"
check "the 513-byte deliveryId dead-lettered: 'deliveryId is 513 bytes long, over the limit of 512 bytes'" \
	grep -qF 'deliveryId is 513 bytes long, over the limit of 512 bytes' "$logdir/delivery-dlq-long.txt"
check "no key holds a cut id" [ -z "$(rc --scan --pattern 'dp:dlv:{LLLLLLLL*')" ]

# --- Redis out of memory: reported, retried, applied once memory is back ------------------------
o=$(uuid)
maxmemory=$(rc CONFIG GET maxmemory | tail -n 1)
policy=$(rc CONFIG GET maxmemory-policy | tail -n 1)
dlq_before=$(dlq_count)
oom_before=$(metric 'dronepipe_delivery_store_failures_total{reason="oom"}')
logs_before=$(grep -c '"event":"redis_out_of_memory"' "$logdir/delivery-7.log")
rc CONFIG SET maxmemory-policy noeviction >/dev/null
rc CONFIG SET maxmemory 1 >/dev/null
GEN_T0=$t0 gen "$o" 2 0 | "$feed" >/dev/null
expect "feed: O produced while Redis is at maxmemory"
oom_ready() { r=$(curl -s -m 1 -w '|%{http_code}' "$base/readyz"); [[ "$r" == *'|503' && "$r" == *OOM* ]]; }
wait_until 20 oom_ready
expect "Redis out of memory: /readyz 503 naming OOM (${r%|*})"
oom_counted() { [ "$(metric 'dronepipe_delivery_store_failures_total{reason="oom"}')" -ge $((oom_before + 2)) ]; }
wait_until 20 oom_counted
expect "dronepipe_delivery_store_failures_total{reason=\"oom\"} counts each attempt"
warned() { [ "$(grep -c '"event":"redis_out_of_memory"' "$logdir/delivery-7.log")" -ge $((logs_before + 2)) ]; }
wait_until 20 warned
expect "a warn line per backoff step (redis_out_of_memory)"
check "the warn line names the error and the delivery" python3 - "$logdir/delivery-7.log" "$o" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if '"redis_out_of_memory"' in l]
assert any(l["level"] == "warn" and l.get("delivery_id") == sys.argv[2] and "OOM" in l.get("err", "")
           for l in lines), lines[-1:]
PY
check "O not applied while Redis refuses writes" [ "$(rc EXISTS "dp:dlv:{$o}")" = 0 ]
rc CONFIG SET maxmemory "$maxmemory" >/dev/null
rc CONFIG SET maxmemory-policy "$policy" >/dev/null
wait_until 30 stage_is "$o" Scheduled
expect "memory back: O applied by the retry"
wait_until 10 ready200
expect "memory back: /readyz 200"
check "nothing dead-lettered for OOM" [ "$(dlq_count)" = "$dlq_before" ]

# --- Redis frozen: /healthz and /readyz never wait on it --------------------------------------
redis_pid=$(cat "$stack_dir/pids/redis.pid" 2>/dev/null)
if [ -n "$redis_pid" ] && [ -d "/proc/$redis_pid" ]; then
	kill -STOP "$redis_pid"
	slow=0 saw503=
	t0s=$SECONDS
	while [ $((SECONDS - t0s)) -lt 6 ]; do # each probe must answer within 1 s
		hc=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$base/healthz") || slow=$((slow + 1))
		r=$(curl -s -m 1 -w '|%{http_code}' "$base/readyz") || slow=$((slow + 1))
		[ "$hc" = 200 ] || slow=$((slow + 1))
		[[ "$r" == *'|503' && "$r" == *Redis* && "$r" == *"timed out"* ]] && saw503=${r%|*}
		sleep 0.2
	done
	kill -CONT "$redis_pid"
	check "Redis frozen 6 s: every /healthz (200) and /readyz answered within 1 s ($slow late or wrong)" [ "$slow" = 0 ]
	check "Redis frozen: /readyz 503 naming Redis and the timed-out call ($saw503)" [ -n "$saw503" ]
	wait_until 10 ready200
	expect "Redis thawed: /readyz 200 again"
else
	bad "frozen test needs the stack's Redis pid file"
fi
