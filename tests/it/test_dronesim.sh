#!/usr/bin/env bash
# Integration test of dronepipe-dronesim against the real broker (scripts/test-it.sh provides it).
# DroneAssigned events are fed with tests/it/dronesim_feed (built by make); flights run at time
# scale 600 along meridians, so a kilometre takes ~0.1 s. Checks: telemetry moves monotonically
# to the pickup then the dropoff with one AtPickup and one AtDropoff arrival; a redelivered
# assignment starts no second flight; a Cancelled lifecycle event stops a flight (also across a
# restart); a newer Rescheduled before pickup reroutes a flight, a stale one does not; kill -9 mid-flight and restart resumes from the last recorded position with exactly
# one arrival of each phase (distinct eventIds).
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
trap stop_children EXIT

port=18385
base=http://127.0.0.1:$port
feed=$build/tests/it/dronesim_feed
[ -x "$feed" ] || {
	bad "test helper $feed is built (make $feed)"
	finish test_dronesim
	exit 1
}
run=$(python3 -c 'import uuid; print(uuid.uuid4().hex[:10])')
d1=sim-$run-normal d2=sim-$run-crash d3=sim-$run-cancel d4=sim-$run-reroute
# A short session timeout so the restarted member does not wait 45 s for the killed one.
sim_env=(DP_HTTP_PORT=$port DP_SIM_TIME_SCALE=600 DP_DRONE_SPEED_MPS=15
	DP_TELEMETRY_INTERVAL_MS=100 DP_KAFKA_PROP_session_timeout_ms=6000
	DP_KAFKA_PROP_heartbeat_interval_ms=1000)

# assigned ID DRONE LAT_DRONE LAT_PICKUP LAT_DROPOFF -> DroneAssigned JSON (points on lon -122.3)
assigned() {
	python3 - "$@" <<'PY'
import json, sys, time, uuid
i, d, a, b, c = sys.argv[1:6]
pt = lambda lat: {"latitude": float(lat), "longitude": -122.3, "altitude": 0.0}
print(json.dumps({"eventId": str(uuid.uuid4()), "deliveryId": i, "droneId": d, "position": pt(a),
                  "assignedAt": int(time.time() * 1000), "pickup": pt(b), "dropoff": pt(c)}))
PY
}
# lifecycle ID STAGE VERSION LAT_PICKUP LAT_DROPOFF -> DeliveryLifecycle JSON
lifecycle() {
	python3 - "$@" <<'PY'
import json, sys, time, uuid
i, stage, version, b, c = sys.argv[1:6]; now = int(time.time() * 1000)
pt = lambda lat: {"latitude": float(lat), "longitude": -122.3, "altitude": 0.0}
print(json.dumps({"eventId": str(uuid.uuid4()), "deliveryId": i, "stage": stage, "version": int(version),
    "time": now, "requestedAt": now, "ownerId": "o-1", "pickupLocation": "a", "pickup": pt(b),
    "dropOffLocation": "b", "dropoff": pt(c), "pickupTime": now, "confirmationRequired": "None",
    "packageId": "p-1", "droneId": "drone-x", "reason": "cancelled by the customer" if stage == "Cancelled" else None}))
PY
}
feed_event() { "$feed" "$1" "$2" "$3" "$4" || bad "feed $3 for $2"; }
telemetry() { "$bin/dronepipe" tail dronedelivery.drone.telemetry --from-beginning --key "$1" --timeout-ms 10000; }
drone_events() { "$bin/dronepipe" tail dronedelivery.drone.events --from-beginning --key "$1" --timeout-ms 10000; }
count() { telemetry "$1" | wc -l; }
# has_phase ID PHASE [MIN] -> at least MIN (default 1) telemetry records of that phase
has_phase() {
	[ "$(telemetry "$1" | grep -c "\"phase\":\"$2\"")" -ge "${3:-1}" ]
}
start_sim() {
	start_service dronepipe-dronesim "$1" "${sim_env[@]}" >/dev/null
	sim_pid=${children[-1]}
	wait_until 40 curl -sf "$base/readyz"
}

check "the simulator becomes ready" start_sim dronesim-1
a1=$(assigned "$d1" drone-1 47.50 47.58 47.74)   # ~9 km then ~18 km: about 3 s
a2=$(assigned "$d2" drone-2 47.50 47.55 48.80)   # ~6 km then ~140 km: about 16 s
a3=$(assigned "$d3" drone-3 47.50 48.40 48.50)   # ~100 km to the pickup: about 11 s
a4=$(assigned "$d4" drone-4 47.50 48.40 48.50)   # rerouted before pickup, see below
feed_event dronedelivery.drone.events "$d1" DroneAssigned "$a1"
feed_event dronedelivery.drone.events "$d2" DroneAssigned "$a2"
feed_event dronedelivery.drone.events "$d3" DroneAssigned "$a3"
feed_event dronedelivery.drone.events "$d4" DroneAssigned "$a4"

# --- cancel: d3 stops on its way to the pickup ---
check "d3 departs" wait_until 15 has_phase "$d3" ToPickup 2
feed_event dronedelivery.delivery.events "$d3" DeliveryLifecycle "$(lifecycle "$d3" Cancelled 5 48.4 48.5)"
# a reschedule before pickup reroutes d4: a stale version changes nothing, a newer one does
check "d4 departs" wait_until 15 has_phase "$d4" ToPickup 2
feed_event dronedelivery.delivery.events "$d4" DeliveryLifecycle "$(lifecycle "$d4" Rescheduled 4 47.56 47.62)"
feed_event dronedelivery.delivery.events "$d4" DeliveryLifecycle "$(lifecycle "$d4" Rescheduled 3 47.90 48.00)"
sleep 1
n3=$(count "$d3")

# --- a normal flight ---
check "d1 arrives at the dropoff" wait_until 20 has_phase "$d1" Arrived
t1=$(telemetry "$d1")
check "d1 telemetry: seq 0.. in order, monotonic to the pickup then the dropoff, ends Arrived" \
	python3 - "$t1" <<'PY'
import json, sys
v = [json.loads(l)["value"] for l in sys.argv[1].splitlines()]
assert [x["seq"] for x in v] == list(range(len(v))), [x["seq"] for x in v]
ph = [x["phase"] for x in v]
k = ph.index("ToDropoff")
assert set(ph[:k]) == {"ToPickup"} and set(ph[k:-1]) == {"ToDropoff"} and ph[-1] == "Arrived", ph
assert len(v) >= 10, len(v)  # sampled every 100 ms over ~3 s
lat = [x["latitude"] for x in v]
assert lat[0] == 47.5 and lat[k] == 47.58 and lat[-1] == 47.74, (lat[0], lat[k], lat[-1])
assert all(a <= b for a, b in zip(lat, lat[1:])), lat  # northwards only: no step back
assert max(lat[:k]) <= 47.58 and max(lat) == 47.74  # never past a point
# speed per wall-clock second: 15 m/s simulated x time scale 600
assert v[-1]["speedMps"] == 0 and all(x["speedMps"] == 15 * 600 for x in v[1:k])
assert all(x["droneId"] == "drone-1" and x["pickup"]["latitude"] == 47.58 and x["dropoff"]["latitude"] == 47.74 for x in v)
assert len({x["eventId"] for x in v}) == len(v)
assert all(a["time"] <= b["time"] for a, b in zip(v, v[1:]))
PY
e1=$(drone_events "$d1")
check "d1: exactly one AtPickup then one AtDropoff arrival, at the points" python3 - "$e1" <<'PY'
import json, sys
rs = [json.loads(l) for l in sys.argv[1].splitlines()]
arr = [r["value"] for r in rs if r["headers"]["event_type"] == "DroneArrived"]
assert [a["phase"] for a in arr] == ["AtPickup", "AtDropoff"], arr
assert arr[0]["position"]["latitude"] == 47.58 and arr[1]["position"]["latitude"] == 47.74
assert all(a["droneId"] == "drone-1" for a in arr)
assert all(r["headers"]["event_id"] == r["value"]["eventId"] for r in rs if r["headers"]["event_type"] == "DroneArrived")
PY
# a redelivered assignment (after arrival) starts no second flight
n1=$(echo "$t1" | wc -l)
feed_event dronedelivery.drone.events "$d1" DroneAssigned "$a1"

check "d4 flies the rescheduled route" wait_until 20 has_phase "$d4" Arrived
t4=$(telemetry "$d4")
e4=$(drone_events "$d4")
check "d4: arrivals at the new pickup and dropoff, telemetry carries the new route" \
	python3 - "$t4" "$e4" <<'PY'
import json, sys
v = [json.loads(l)["value"] for l in sys.argv[1].splitlines()]
arr = [a for a in (json.loads(l)["value"] for l in sys.argv[2].splitlines()) if "phase" in a]
assert [(a["phase"], a["position"]["latitude"]) for a in arr] == [("AtPickup", 47.56), ("AtDropoff", 47.62)], arr
assert v[0]["pickup"]["latitude"] == 48.4 and v[-1]["pickup"]["latitude"] == 47.56, (v[0], v[-1])
assert v[-1]["phase"] == "Arrived" and v[-1]["latitude"] == 47.62
assert all(x["pickup"]["latitude"] != 47.9 for x in v)
PY

# --- crash mid-flight: kill -9 while d2 flies to the dropoff, restart, resume ---
check "d2 is on its way to the dropoff" wait_until 15 has_phase "$d2" ToDropoff 3
kill -9 "$sim_pid"
wait "$sim_pid" 2>/dev/null
before=$(telemetry "$d2")
check "d2 had not arrived when the simulator was killed" [ -n "$before" ] && ! grep -q '"phase":"Arrived"' <<<"$before"
check "the simulator restarts" start_sim dronesim-2
check "d2 arrives after the restart" wait_until 40 has_phase "$d2" Arrived
after=$(telemetry "$d2")
check "d2 resumed from its last recorded position (no teleport, no second flight)" \
	python3 - "$before" "$after" <<'PY'
import json, sys
b = [json.loads(l)["value"] for l in sys.argv[1].splitlines()]
a = [json.loads(l)["value"] for l in sys.argv[2].splitlines()]
assert a[:len(b)] == b
new = a[len(b):]
assert new, "no telemetry after the restart"
last, first = b[-1], new[0]
dropoff = 48.8
assert abs(dropoff - first["latitude"]) <= abs(dropoff - last["latitude"]) + 1e-9, (last, first)
assert first["phase"] == "ToDropoff" and first["seq"] == last["seq"] + 1, (last, first)
assert all(x["phase"] != "ToPickup" for x in new) and all(x["seq"] > 0 for x in new)
lat = [x["latitude"] for x in a]
assert all(p <= q for p, q in zip(lat, lat[1:])), "moved backwards"
assert new[-1]["phase"] == "Arrived" and new[-1]["latitude"] == dropoff
assert [x["seq"] for x in a] == list(range(len(a))), [x["seq"] for x in a]
PY
e2=$(drone_events "$d2")
check "d2: one AtPickup and one AtDropoff overall (distinct eventIds)" python3 - "$e2" <<'PY'
import json, sys
arr = [json.loads(l)["value"] for l in sys.argv[1].splitlines()]
arr = [a for a in arr if "phase" in a]
ids = {ph: {a["eventId"] for a in arr if a["phase"] == ph} for ph in ("AtPickup", "AtDropoff")}
assert len(ids["AtPickup"]) == 1 and len(ids["AtDropoff"]) == 1, ids
PY

# --- what must not have happened meanwhile (also across the restart) ---
sleep 1
check "cancelled d3: no telemetry after the cancel, none after the restart ($n3 records)" \
	[ "$(count "$d3")" -eq "$n3" ]
check "cancelled d3 never arrived" [ "$(drone_events "$d3" | grep -c DroneArrived)" -eq 0 ]
check "redelivered assignment of arrived d1: no new telemetry" [ "$(count "$d1")" -eq "$n1" ]
check "d1: still exactly two arrivals" [ "$(drone_events "$d1" | grep -c DroneArrived)" -eq 2 ]
grep -q '"event":"flights_restored".*"flying":1' "$logdir/dronesim-2.log" ||
	grep -q '"event":"flights_restored".*"flying":[1-9]' "$logdir/dronesim-2.log"
expect "the restarted simulator logged restored flights"
m=$(curl -s "$base/metrics")
check "metrics: telemetry, arrivals and flights in progress (0 now)" python3 - "$m" <<'PY'
import sys
lines = {l.rsplit(" ", 1)[0]: float(l.rsplit(" ", 1)[1]) for l in sys.argv[1].splitlines() if l and not l.startswith("#")}
assert lines["dronepipe_dronesim_telemetry_records_total"] > 0, lines
assert lines['dronepipe_dronesim_arrivals_total{phase="AtDropoff"}'] >= 1
assert lines["dronepipe_dronesim_flights_in_progress"] == 0
PY

finish test_dronesim
