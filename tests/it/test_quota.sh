#!/usr/bin/env bash
# Integration test of the per-owner limit of deliveries in flight (scheduler
# DP_OWNER_MAX_IN_FLIGHT=3, a fleet of 10 so drones are never what runs out; scripts/test-it.sh
# provides Kafka and FerretDB). The real ingress, workflow, package and scheduler services run with
# a 240 s assignment timeout, so a Failed within a minute is the scheduler's refusal.
#   - one owner's 5 deliveries, posted at once: exactly 3 Scheduled, 2 Failed with the reason
#     naming the owner and the limit, no claim made for those 2, the refusals counted;
#   - the AssignDrone of a Scheduled delivery, delivered again while the owner is at the limit,
#     still gets its drone (the same one), not a refusal;
#   - another owner's delivery is Scheduled meanwhile;
#   - once one of the first owner's deliveries is cancelled (its drone released), a new one of that
#     owner is Scheduled again, and a further one is refused again.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/workflow.sh"
trap stop_children EXIT

run_id=$(date +%s)
db=wfsch_quota_$run_id
start_ingress
warm_up quota
start_workflow wf-quota-workflow DP_WORKFLOW_ASSIGN_TIMEOUT_S=240 DP_WORKFLOW_ASSIGN_BACKOFF_MIN_MS=200 \
	DP_WORKFLOW_ASSIGN_BACKOFF_MAX_MS=1000
start_stores quota 10 DP_OWNER_MAX_IN_FLIGHT=3

owner=owner-quota-$run_id
other=owner-other-$run_id
# post_owner OWNER N OUTFILE -> N deliveries of OWNER posted at once (unique packages), their ids
post_owner() {
	: >"$3"
	python3 - "$ingress_port" "$1" "$2" "$3" <<'PY'
import http.client, json, random, sys, threading, uuid
port, owner, n, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ids, errors, lock = [], [], threading.Lock()
def post(i):
    rnd = random.Random()
    body = {"ownerId": owner, "pickupLocation": "%.5f,%.5f" % (47.55 + rnd.random() * 0.1, -122.4 + rnd.random() * 0.1),
            "dropOffLocation": "%.5f,%.5f" % (47.55 + rnd.random() * 0.1, -122.4 + rnd.random() * 0.1),
            "pickupTime": 1795770000000 + i * 60000, "deadline": "in an hour", "confirmationRequired": "None",
            "packageInfo": {"packageId": "pkg-" + str(uuid.uuid4()), "size": "Small", "weight": 1.5, "tag": "quota"}}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/api/deliveryrequests", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse(); data = r.read()
    with lock:
        if r.status == 202: ids.append(json.loads(data)["deliveryId"])
        else: errors.append("HTTP %d %s" % (r.status, data[:200]))
ts = [threading.Thread(target=post, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
open(out, "w").write("".join(i + "\n" for i in ids))
if errors: print("post_owner: %s" % errors, file=sys.stderr); sys.exit(1)
PY
}
# ids_at IDFILE SINCE_MS STAGE -> the deliveries of IDFILE with an event of STAGE, one a line
ids_at() {
	local f=$wf_tmp/quota.events.$$
	events_since "$2" "$f" || return 1
	python3 - "$1" "$f" "$3" <<'PY'
import json, sys
ids = set(open(sys.argv[1]).read().split())
for line in open(sys.argv[2]):
    try: r = json.loads(line)
    except ValueError: continue
    v = r.get("value") or {}
    if r.get("key") in ids and v.get("stage") == sys.argv[3]: print(r["key"])
PY
}
in_flight() { mongo_count "$db" assignments "{\"ownerId\": \"$1\", \"status\": \"assigned\"}"; }
quota_refusals() { metric $scheduler_port '^dronepipe_scheduler_assignments_refused_total.fault="owner_quota"'; }
want_reason="drone assignment refused: owner $owner already has 3 deliveries in flight (limit 3)"

# --- one owner's 5 deliveries at once: 3 Scheduled, 2 Failed with the quota reason ---
since=$(now_ms)
check "5 deliveries of $owner accepted" post_owner "$owner" 5 "$wf_tmp/quota.first"
check "5 ids" [ "$(wc -l <"$wf_tmp/quota.first")" = 5 ]
wait_all 90 "$wf_tmp/quota.first" "$since" Scheduled Failed
check "every one of the 5 ends Scheduled or Failed within 90 s" [ $? -eq 0 ]
ids_at "$wf_tmp/quota.first" "$since" Scheduled | sort -u >"$wf_tmp/quota.scheduled"
ids_at "$wf_tmp/quota.first" "$since" Failed | sort -u >"$wf_tmp/quota.failed"
check "exactly 3 Scheduled ($(wc -l <"$wf_tmp/quota.scheduled"))" [ "$(wc -l <"$wf_tmp/quota.scheduled")" = 3 ]
check "exactly 2 Failed ($(wc -l <"$wf_tmp/quota.failed"))" [ "$(wc -l <"$wf_tmp/quota.failed")" = 2 ]
check "none both Scheduled and Failed" [ -z "$(comm -12 "$wf_tmp/quota.scheduled" "$wf_tmp/quota.failed")" ]
while read -r k; do
	reason=$(stage_field "$k" "$since" Failed reason)
	[ "$reason" = "$want_reason" ]
	expect "${k:0:8}: Failed with the quota reason ($reason)"
	check "${k:0:8}: no claim was made for it" [ "$(mongo_count "$db" claims "{\"deliveryId\": \"$k\"}")" = 0 ]
	check "${k:0:8}: the scheduler holds no assignment for it" \
		[ "$(http_code "http://127.0.0.1:$scheduler_port/api/dronedeliveries/$k")" = 404 ]
done <"$wf_tmp/quota.failed"
check "the owner holds 3 drones" [ "$(in_flight "$owner")" = 3 ]
check "the refusals are counted under fault=owner_quota ($(quota_refusals))" [ "$(quota_refusals)" -ge 2 ]

# --- a Scheduled delivery's AssignDrone again, the owner at the limit: the same drone ---
held=$(head -1 "$wf_tmp/quota.scheduled")
drone=$(json_get "$(curl -s -m 2 "http://127.0.0.1:$scheduler_port/api/dronedeliveries/$held")" 'd["droneId"]')
"$bin/dronepipe" tail dronedelivery.drone.commands --from-time "$since" --key "$held" --timeout-ms 3000 2>/dev/null |
	python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    if r["type"].endswith("AssignDrone"):
        print(json.dumps(r["value"])); break' >"$wf_tmp/quota.assign"
check "the AssignDrone of ${held:0:8} read back" [ -s "$wf_tmp/quota.assign" ]
again=$(now_ms)
check "that AssignDrone produced again" \
	"$build/tests/it/dronesim_feed" dronedelivery.drone.commands "$held" AssignDrone "$(cat "$wf_tmp/quota.assign")"
reassigned() {
	"$bin/dronepipe" tail dronedelivery.drone.events --from-time "$again" --key "$held" --timeout-ms 1000 2>/dev/null |
		python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    if r["type"].endswith("DroneAssigned") and r["value"]["droneId"] == sys.argv[1]: sys.exit(0)
    if r["type"].endswith("DroneUnavailable"): sys.exit(2)
sys.exit(1)' "$drone"
}
wait_until 60 reassigned
check "the repeated AssignDrone is answered DroneAssigned with the same drone ($drone), not refused" [ $? -eq 0 ]
check "still 3 drones held by the owner" [ "$(in_flight "$owner")" = 3 ]

# --- another owner is not limited by the first one ---
since=$(now_ms)
check "a delivery of $other accepted" post_owner "$other" 1 "$wf_tmp/quota.other"
wait_all 60 "$wf_tmp/quota.other" "$since" Scheduled
check "the other owner's delivery is Scheduled" [ $? -eq 0 ]

# --- one of the owner's deliveries cancelled: the owner gets a drone again, then the limit again ---
check "${held:0:8} is cancelled" [ "$(http_code -X DELETE "$ingress/api/deliveryrequests/$held")" = 204 ]
released() { [ "$(in_flight "$owner")" = 2 ]; }
wait_until 60 released
check "its drone is released: the owner holds 2" [ $? -eq 0 ]
since=$(now_ms)
check "a new delivery of $owner accepted" post_owner "$owner" 1 "$wf_tmp/quota.again"
wait_all 60 "$wf_tmp/quota.again" "$since" Scheduled Failed
check "it ends within 60 s" [ $? -eq 0 ]
check "it is Scheduled" [ "$(ids_at "$wf_tmp/quota.again" "$since" Scheduled | wc -l)" = 1 ]
check "the owner holds 3 again" [ "$(in_flight "$owner")" = 3 ]
since=$(now_ms)
check "one more delivery of $owner accepted" post_owner "$owner" 1 "$wf_tmp/quota.more"
wait_all 60 "$wf_tmp/quota.more" "$since" Scheduled Failed
check "it ends within 60 s" [ $? -eq 0 ]
k=$(cat "$wf_tmp/quota.more")
reason=$(stage_field "$k" "$since" Failed reason)
[ "$reason" = "$want_reason" ]
expect "it is Failed with the quota reason again ($reason)"

finish test_quota
