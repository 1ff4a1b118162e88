#!/usr/bin/env bash
# Integration test of the service-area rule past the ingress (scripts/test-it.sh provides Kafka and
# FerretDB): records written straight onto the topics by another producer, never seen by the
# ingress, cannot tie up a drone. The real workflow, package and scheduler services run with a
# 240 s assignment timeout, so a Failed within a minute is the scheduler's refusal, not the timeout.
#   - a DeliveryRequested whose pickup lies 230 km outside DP_SERVICE_AREA (default, 25 km) and
#     one whose ends lie inside but 42 km apart (scheduler DP_DRONE_RANGE_M=30000) each end Failed
#     with the scheduler's reason, never Scheduled, and no drone is claimed for them;
#   - an AssignDrone for a delivery no saga knows, its drop-off outside the area, gets a permanent
#     DroneUnavailable naming the drop-off and claims nothing;
#   - a reschedule of a flying delivery to a drop-off outside, written past the ingress, is
#     ignored by the workflow (no Rescheduled event: the drone is not sent away);
#   - a good delivery still gets its drone, and every drone is free at the end.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/workflow.sh"
trap stop_children EXIT

run_id=$(date +%s)
db=wfsch_area_$run_id
start_ingress
warm_up area
start_workflow wf-area-workflow DP_WORKFLOW_ASSIGN_TIMEOUT_S=240 DP_WORKFLOW_ASSIGN_BACKOFF_MIN_MS=200 \
	DP_WORKFLOW_ASSIGN_BACKOFF_MAX_MS=1000
start_stores area 3 DP_DRONE_RANGE_M=30000

# --- a good delivery through the ingress: Scheduled; its request is the template of the others ---
since=$(now_ms)
# near the box's centre: every drone's home is within half its diagonal (16.8 km), so the 30 km
# range always fits the approach and the 0.7 km route (random points could need 35 km)
good=$(WF_POINTS="47.62500,-122.32500;47.63000,-122.32000" post_one area 1)
wait_until 60 has_stage "$good" "$since" Scheduled
check "a good delivery is Scheduled" [ $? -eq 0 ]
"$bin/dronepipe" tail dronedelivery.requests --from-time "$since" --key "$good" --limit 1 --timeout-ms 5000 \
	2>/dev/null >"$wf_tmp/area.template"
check "its DeliveryRequested read back as the template" grep -q DeliveryRequested "$wf_tmp/area.template"

# raw_request ID PICKUP_LAT PICKUP_LON DROPOFF_LAT DROPOFF_LON -> the template with a new id,
# eventId, package and these points, produced onto dronedelivery.requests (bypassing the ingress)
raw_request() {
	local json
	json=$(python3 -c '
import json, sys, uuid
v = json.loads(open(sys.argv[1]).readline())["value"]
did, plat, plon, dlat, dlon = sys.argv[2], *map(float, sys.argv[3:7])
v.update(deliveryId=did, eventId=str(uuid.uuid4()), idempotencyKey=None,
         pickupLocation="%s,%s" % (sys.argv[3], sys.argv[4]), dropOffLocation="%s,%s" % (sys.argv[5], sys.argv[6]),
         pickup={"latitude": plat, "longitude": plon, "altitude": 0.0},
         dropoff={"latitude": dlat, "longitude": dlon, "altitude": 0.0})
v["packageInfo"]["packageId"] = "pkg-" + did
print(json.dumps(v))' "$wf_tmp/area.template" "$@") || return 1
	"$build/tests/it/dronesim_feed" dronedelivery.requests "$1" DeliveryRequested "$json"
}
outside=$(python3 -c 'import uuid; print(uuid.uuid4())')
too_far=$(python3 -c 'import uuid; print(uuid.uuid4())')
since=$(now_ms)
check "raw DeliveryRequested with a pickup in Portland (230 km away) produced" \
	raw_request "$outside" 45.52 -122.68 47.62 -122.33
check "raw DeliveryRequested with both ends inside but 42 km apart produced" \
	raw_request "$too_far" 47.80 -122.33 47.42 -122.33

wait_until 60 has_stage "$outside" "$since" Failed
check "outside: Failed within 60 s (the assignment timeout is 240 s)" [ $? -eq 0 ]
reason=$(stage_field "$outside" "$since" Failed reason)
[[ "$reason" == "drone assignment refused: pickup 45.52000,-122.68000 is outside the service area"* &&
	"$reason" == *"radius of 25000 m (DP_SERVICE_AREA)"* ]]
expect "outside: the reason names the pickup and the limit ($reason)"
wait_until 60 has_stage "$too_far" "$since" Failed
check "too far: Failed within 60 s" [ $? -eq 0 ]
reason=$(stage_field "$too_far" "$since" Failed reason)
[[ "$reason" == "drone assignment refused: route from pickup to drop-off is 42"* &&
	"$reason" == *"drone range of 30000 m (DP_DRONE_RANGE_M)"* ]]
expect "too far: the reason names the route and the range ($reason)"
for k in "$outside" "$too_far"; do
	! has_stage "$k" "$since" Scheduled
	expect "${k:0:8}: never Scheduled"
	check "${k:0:8}: the scheduler holds no assignment for it" \
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$scheduler_port/api/dronedeliveries/$k")" = 404 ]
	check "${k:0:8}: no claim was ever made for it" [ "$(mongo_count "$db" claims "{\"deliveryId\": \"$k\"}")" = 0 ]
done
check "the refusals are counted by fault" [ "$(metric $scheduler_port '^dronepipe_scheduler_assignments_refused_total')" -ge 2 ]

# --- a raw AssignDrone for a delivery no saga knows, drop-off outside the area ---
cmd=$(python3 -c 'import uuid; print(uuid.uuid4())')
assign=$(python3 -c '
import json, sys, time, uuid
now = int(time.time() * 1000)
print(json.dumps({"eventId": str(uuid.uuid4()), "deliveryId": sys.argv[1], "attempt": 1, "requestedAt": now,
    "ownerId": "foreign-producer", "packageId": "pkg-x", "packageSize": "Small", "packageWeight": 1.0,
    "pickup": {"latitude": 47.61, "longitude": -122.33, "altitude": 0.0},
    "dropoff": {"latitude": 0.0, "longitude": 0.0, "altitude": 0.0}, "pickupTime": now, "expedited": False}))' "$cmd")
since=$(now_ms)
check "raw AssignDrone with a drop-off at 0,0 produced onto dronedelivery.drone.commands" \
	"$build/tests/it/dronesim_feed" dronedelivery.drone.commands "$cmd" AssignDrone "$assign"
refused() {
	"$bin/dronepipe" tail dronedelivery.drone.events --from-time "$since" --key "$cmd" --timeout-ms 1000 2>/dev/null |
		python3 -c '
import json, sys
for l in sys.stdin:
    v = json.loads(l)["value"]
    if v.get("permanent") is True and v["reason"].startswith("dropoff 0.00000,0.00000 is outside the service area"):
        sys.exit(0)
sys.exit(1)'
}
wait_until 60 refused
check "raw AssignDrone: answered DroneUnavailable, permanent, naming the drop-off" [ $? -eq 0 ]
check "raw AssignDrone: no claim and no assignment" [ "$(mongo_count "$db" claims "{\"deliveryId\": \"$cmd\"}")" = 0 ] &&
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$scheduler_port/api/dronedeliveries/$cmd")" = 404 ]

# --- a raw reschedule of the good (flying) delivery to a drop-off 230 km away: ignored ---
resched=$(python3 -c '
import json, sys, time, uuid
print(json.dumps({"eventId": str(uuid.uuid4()), "deliveryId": sys.argv[1], "requestedAt": int(time.time() * 1000),
    "pickupLocation": None, "pickup": None, "dropOffLocation": "45.52,-122.68",
    "dropoff": {"latitude": 45.52, "longitude": -122.68, "altitude": 0.0}, "pickupTime": None, "deadline": None}))' "$good")
since=$(now_ms)
check "raw reschedule of the flying delivery to Portland produced" \
	"$build/tests/it/dronesim_feed" dronedelivery.requests "$good" DeliveryRescheduleRequested "$resched"
wait_until 60 grep -q "reschedule refused, the delivery keeps its points: dropoff 45.52000,-122.68000 is outside" \
	"$logdir/wf-area-workflow.log"
check "raw reschedule: the workflow refuses it, naming the drop-off" [ $? -eq 0 ]
! has_stage "$good" "$since" Rescheduled
expect "raw reschedule: no Rescheduled event; the delivery keeps its points"

# --- the good delivery's drone is the only one ever taken; cancelled, every drone is free ---
check "the good delivery is cancelled" [ "$(http_code -X DELETE "$ingress/api/deliveryrequests/$good")" = 204 ]
all_free() { [ "$(mongo_count "$db" drones '{"status": "available"}')" = 3 ]; }
wait_until 60 all_free
check "every drone of the fleet (3) is available at the end" [ $? -eq 0 ]
check "one claim was made in all, the good delivery's" [ "$(mongo_count "$db" claims)" = 1 ]

finish test_area
