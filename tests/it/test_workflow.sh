#!/usr/bin/env bash
# Integration test of the workflow saga with the real package and scheduler services, the ingress,
# Kafka and FerretDB (scripts/test-it.sh provides them). No drone simulator: a delivery stops at
# HeadedToPickup after Scheduled. Phases, each with package/scheduler databases of their own:
#   fleet1   cancel before and after the drone assignment; the released drone serves the next one
#   fleet5   20 requests on 5 drones: 5 Scheduled, the rest wait and end Failed after the timeout
#   bulk     200 deliveries: each Scheduled once, one package document, one assignment, distinct
#            drones; POST->Scheduled latency; reschedule before and after assignment; cancel
#   ferret   FerretDB stopped for 10 s mid-run: nothing dead-lettered, all Scheduled afterwards
#   crash    kill -9 of the workflow during a run: all Scheduled (or finished), no duplicate
#            package documents, no drone held twice, no second Scheduled
#   replay   the workflow group reset to the start of its inputs: no new lifecycle outcome
#   restore  a saga whose last changelog value does not decode keeps its last readable state
#   early    a reply read before its request is retried, not dead-lettered
#   order    while the changelog refuses saga states, no command or lifecycle event goes out
#   unsent   a restored state marked unsentCause (a timer's outputs not all acknowledged) has that
#            cause's outputs re-sent with their eventIds, then is written unmarked
# Sizes: WF_IT_BULK_N (200), WF_IT_CRASH_N (400). The scheduler lists every available drone per
# assignment (fleet.c list_available), so a run costs O(N x fleet): 1000 took ~130 s on 2 cores,
# 2000 does not fit the ~5 min budget.
# bulk, ferret and crash post every delivery for one owner: their schedulers run without the
# per-owner limit (DP_OWNER_MAX_IN_FLIGHT=0; the limit itself is tests/it/test_quota.sh).
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/workflow.sh"
trap stop_children EXIT

run_id=$(date +%s)
bulk_n=${WF_IT_BULK_N:-200}
crash_n=${WF_IT_CRASH_N:-400}
t_start=$(now_ms)
T0=$SECONDS
phase_t0=$SECONDS
timing=()
phase_done() {
	timing+=("$1=$((SECONDS - phase_t0))s")
	echo "# phase $1 took $((SECONDS - phase_t0))s"
	phase_t0=$SECONDS
}
all_ids=$wf_tmp/all.ids
: >"$all_ids"

# The workflow of the first phases: a short assignment timeout and quick retries.
wf_short=(DP_WORKFLOW_ASSIGN_TIMEOUT_S=8 DP_WORKFLOW_ASSIGN_BACKOFF_MIN_MS=200 DP_WORKFLOW_ASSIGN_BACKOFF_MAX_MS=1000
	DP_KAFKA_PROP_SESSION_TIMEOUT_MS=6000 DP_KAFKA_PROP_HEARTBEAT_INTERVAL_MS=1000)
wf_long=(DP_WORKFLOW_ASSIGN_TIMEOUT_S=240 DP_WORKFLOW_ASSIGN_BACKOFF_MIN_MS=200 DP_WORKFLOW_ASSIGN_BACKOFF_MAX_MS=1000
	DP_KAFKA_PROP_SESSION_TIMEOUT_MS=6000 DP_KAFKA_PROP_HEARTBEAT_INTERVAL_MS=1000)

# --- warm-up: whatever earlier tests left on the topics is worked off before the phases ---
start_ingress
start_workflow wf-workflow-1 "${wf_short[@]}"
start_stores warmup 20
wait_until 120 quiet $workflow_port $package_port $scheduler_port || bad "warm-up: pipeline at rest"
dlq_keys "$wf_tmp/dlq0.keys"
phase_done warmup

# --- fleet1: cancel before and after assignment; a released drone is free again ---
stop_stores
start_stores fleet1 1
since=$(now_ms)
x1=$(post_one fleet1 1)
wait_until 60 has_stage "$x1" "$since" Scheduled || bad "fleet1: first delivery Scheduled"
d1=$(stage_field "$x1" "$since" Scheduled droneId)
check "fleet1: the only drone is assigned (got '$d1')" [ "$d1" = drone-0001 ]
x2=$(post_one fleet1 2)
echo "$x1 $x2" | tr ' ' '\n' >>"$all_ids"
# x2 waits for a drone: the scheduler has answered DroneUnavailable at least once
wait_until 30 bash -c "'$bin/dronepipe' tail dronedelivery.drone.events --from-time $since --key $x2 --timeout-ms 1000 | grep -q DroneUnavailable"
check "fleet1: second delivery told no drone is available" [ $? -eq 0 ]
check "cancel before assignment: DELETE -> 204" [ "$(http_code -X DELETE "$ingress/api/deliveryrequests/$x2")" = 204 ]
wait_until 30 has_stage "$x2" "$since" Cancelled
check "cancel before assignment: Cancelled" [ $? -eq 0 ]
events_since "$since" "$wf_tmp/fleet1.ev"
check "cancel before assignment: never Scheduled, Cancelled with a reason, no drone" pycheck '
e = events(sys.argv[1])[sys.argv[2]]
assert stages(e) == ["Created", "Cancelled"], stages(e)
c = e[-1]
assert c["reason"] and c["droneId"] is None and c["version"] == 2, c' "$wf_tmp/fleet1.ev" "$x2"
code=$(http_code "http://127.0.0.1:$scheduler_port/api/dronedeliveries/$x2")
check "cancel before assignment: the scheduler holds no drone for it (GET -> $code)" [ "$code" = 404 ]
a=$(curl -s "http://127.0.0.1:$scheduler_port/api/dronedeliveries/$x1")
check "the first delivery still holds drone-0001" [ "$(json_get "$a" 'd["droneId"]+"|"+d["status"]' 2>/dev/null)" = "drone-0001|assigned" ]
check "cancel after assignment: DELETE -> 204" [ "$(http_code -X DELETE "$ingress/api/deliveryrequests/$x1")" = 204 ]
wait_until 30 has_stage "$x1" "$since" Cancelled
check "cancel after assignment: Cancelled" [ $? -eq 0 ]
wait_until 30 assignment_is "$x1" drone-0001 released
check "cancel after assignment: the assignment is released" [ $? -eq 0 ]
x3=$(post_one fleet1 3)
echo "$x3" >>"$all_ids"
wait_until 60 has_stage "$x3" "$since" Scheduled
check "next delivery Scheduled" [ $? -eq 0 ]
d3=$(stage_field "$x3" "$since" Scheduled droneId)
check "the released drone is free again: the next delivery gets drone-0001 (got '$d3')" [ "$d3" = drone-0001 ]
check "  and the scheduler says so" assignment_is "$x3" drone-0001 assigned
events_since "$since" "$wf_tmp/fleet1.ev"
check "cancel after assignment: Created, Scheduled, HeadedToPickup, Cancelled (versions 1..4), drone named" pycheck '
e = events(sys.argv[1])[sys.argv[2]]
assert stages(e) == ["Created", "Scheduled", "HeadedToPickup", "Cancelled"], stages(e)
assert [x["version"] for x in e] == [1, 2, 3, 4], [x["version"] for x in e]
assert e[-1]["reason"], e[-1]' "$wf_tmp/fleet1.ev" "$x1"
wait_until 60 quiet $workflow_port $package_port $scheduler_port || bad "fleet1: pipeline at rest"
phase_done fleet1

# --- fleet5: 20 requests, 5 drones -> 5 Scheduled, 15 wait and end Failed after the timeout ---
stop_stores
start_stores fleet5 5
since=$(now_ms)
post_many fleet5 20 "$wf_tmp/fleet5.ids" || bad "fleet5: 20 POSTs -> 202"
cat "$wf_tmp/fleet5.ids" >>"$all_ids"
wait_until 20 at_least "$wf_tmp/fleet5.ids" "$since" 5 Scheduled
check "fleet5: 5 deliveries Scheduled" [ $? -eq 0 ]
n=$(count_since "$wf_tmp/fleet5.ids" "$since" Failed Cancelled Completed)
check "fleet5: the 15 others wait (finished so far: $n)" [ "$n" -eq 0 ]
wait_until 60 at_least "$wf_tmp/fleet5.ids" "$since" 15 Failed
check "fleet5: the 15 others end Failed" [ $? -eq 0 ]
events_since "$since" "$wf_tmp/fleet5.ev"
check "fleet5: 5 Scheduled on 5 distinct drones, 15 Failed after >= 8 s with the timeout reason" pycheck '
ev = events(sys.argv[1], set(ids(sys.argv[2])))
sched = {k: [x for x in e if x["stage"] == "Scheduled"] for k, e in ev.items()}
ok = [k for k in sched if sched[k]]
assert len(ok) == 5, len(ok)
assert len({sched[k][0]["droneId"] for k in ok}) == 5
failed = [k for k, e in ev.items() if e[-1]["stage"] == "Failed"]
assert len(failed) == 15 and not set(failed) & set(ok), (len(failed), set(failed) & set(ok))
for k in failed:
    e = ev[k]
    assert stages(e) == ["Created", "Failed"], stages(e)
    waited = e[-1]["_at"] - e[0]["_at"]
    assert waited >= 8000, (k, waited)
    m = re.match(r"no drone (available|assigned) within 8s \((\d+) attempts\)", e[-1]["reason"] or "")
    assert m and int(m.group(2)) >= 2, e[-1]["reason"]
    assert e[-1]["droneId"] is None
print("fleet5: failed after %.1f..%.1f s" % (min(ev[k][-1]["_at"] - ev[k][0]["_at"] for k in failed) / 1000,
      max(ev[k][-1]["_at"] - ev[k][0]["_at"] for k in failed) / 1000), file=sys.stderr)' "$wf_tmp/fleet5.ev" "$wf_tmp/fleet5.ids"
wait_until 60 quiet $workflow_port $package_port $scheduler_port || bad "fleet5: pipeline at rest"
"$bin/dronepipe" tail dronedelivery.workflow.state --from-time "$since" --timeout-ms 3000 \
	>"$wf_tmp/fleet5.states" 2>/dev/null
check "fleet5: states before outputs: each Failed state written before its Failed event; each timer's state marked unsentCause, then unmarked" pycheck '
ev = events(sys.argv[1], set(ids(sys.argv[2])))
failed = [k for k, e in ev.items() if e[-1]["stage"] == "Failed"]
states = {}
for line in open(sys.argv[3]):
    try: r = json.loads(line)
    except ValueError: continue
    if r.get("key") in failed and r.get("value"):
        states.setdefault(r["key"], []).append((r["offset"], int(r["headers"]["produced_at"]), r["value"]))
assert len(failed) == 15, len(failed)
marked = 0
for k in failed:
    st = sorted(states.get(k, []))
    for i, (_, _, v) in enumerate(st):
        if v.get("unsentCause"):  # an assign retry or the deadline: a timer transition
            marked += 1
            assert v["unsentCause"] == v["eventId"], (k, v["unsentCause"], v["eventId"])
            nxt = st[i + 1][2] if i + 1 < len(st) else {}
            assert nxt.get("eventId") == v["eventId"] and nxt.get("unsentCause") is None, (k, i)
    at = [a for _, a, v in st if v["status"] == "Failed"]
    assert at and at[0] <= ev[k][-1]["_at"], (k, at[:1], ev[k][-1]["_at"])
assert marked > 0
print("fleet5: %d timer states marked, each then unmarked" % marked, file=sys.stderr)' \
	"$wf_tmp/fleet5.ev" "$wf_tmp/fleet5.ids" "$wf_tmp/fleet5.states"
wait_until 30 metric_at_least $workflow_port '^dronepipe_workflow_sagas_compacted_total' 15
check "fleet5: the 15 failed sagas drop their outbox from memory once their inputs are stored" [ $? -eq 0 ]
mongo_find_json "wfsch_fleet5_$run_id" assignments >"$wf_tmp/fleet5.asg"
check "fleet5: the 5 drones stay with their deliveries, the failed hold none" pycheck '
docs = json.load(open(sys.argv[3]))
ev = events(sys.argv[1], set(ids(sys.argv[2])))
held = {d["_id"]: d["droneId"] for d in docs if d["status"] == "assigned"}
sched = {k: [x for x in e if x["stage"] == "Scheduled"][0]["droneId"] for k, e in ev.items() if "Scheduled" in stages(e)}
assert held == sched, (held, sched)' "$wf_tmp/fleet5.ev" "$wf_tmp/fleet5.ids" "$wf_tmp/fleet5.asg"
phase_done fleet5

# --- bulk: N deliveries through the ingress ---
svc_stop "$workflow_pid"
start_workflow wf-workflow-2 "${wf_long[@]}"
stop_stores
start_stores bulk $((bulk_n + 10)) DP_OWNER_MAX_IN_FLIGHT=0
since=$(now_ms)
t=$SECONDS
post_many bulk "$bulk_n" "$wf_tmp/bulk.ids" || bad "bulk: $bulk_n POSTs -> 202"
cat "$wf_tmp/bulk.ids" >>"$all_ids"
echo "# bulk: $bulk_n POSTs in $((SECONDS - t))s"
wait_all 240 "$wf_tmp/bulk.ids" "$since" Scheduled
check "bulk: all $bulk_n deliveries reach Scheduled ($((SECONDS - t))s)" [ $? -eq 0 ]
events_since "$since" "$wf_tmp/bulk.ev"
check "bulk: each delivery has Created, Scheduled, HeadedToPickup once, versions 1..3, a drone" pycheck '
ev = events(sys.argv[1], set(ids(sys.argv[2])))
assert len(ev) == len(ids(sys.argv[2]))
for k, e in ev.items():
    d = distinct(e)
    assert stages(d) == ["Created", "Scheduled", "HeadedToPickup"], (k, stages(d))
    assert [x["version"] for x in d] == [1, 2, 3], (k, [x["version"] for x in d])
    assert d[1]["droneId"] and d[1]["droneId"] == d[2]["droneId"], (k, d[1]["droneId"])
    assert d[1]["pickupEta"] and d[1]["deliveryEta"] and d[1]["pickupEta"] <= d[1]["deliveryEta"]' "$wf_tmp/bulk.ev" "$wf_tmp/bulk.ids"
check "bulk: distinct drones" pycheck '
ev = events(sys.argv[1], set(ids(sys.argv[2])))
drones = [[x for x in e if x["stage"] == "Scheduled"][0]["droneId"] for e in ev.values()]
assert len(set(drones)) == len(drones), len(drones) - len(set(drones))' "$wf_tmp/bulk.ev" "$wf_tmp/bulk.ids"
wait_until 60 quiet $workflow_port $package_port $scheduler_port || bad "bulk: pipeline at rest"
check_stores bulk "$wf_tmp/bulk.ids" "$wf_tmp/bulk.ev" "wfpkg_bulk_$run_id" "wfsch_bulk_$run_id"
first=$(head -1 "$wf_tmp/bulk.ids")
p=$(curl -s "http://127.0.0.1:$package_port/api/packages/pkg-bulk-0")
check "bulk: GET /api/packages/pkg-bulk-0 -> the package" [ "$(json_get "$p" 'd["id"]+"|"+d["size"]+"|"+str(d["weight"])+"|"+d["tag"]' 2>/dev/null)" = "pkg-bulk-0|Small|1.5|bulk" ]
a=$(curl -s "http://127.0.0.1:$scheduler_port/api/dronedeliveries/$first")
check "bulk: GET /api/dronedeliveries/<id> -> assigned, the drone of the Scheduled event" \
	[ "$(json_get "$a" 'd["deliveryId"]+"|"+d["droneId"]+"|"+d["status"]' 2>/dev/null)" = "$first|$(stage_field "$first" "$since" Scheduled droneId)|assigned" ]
"$bin/dronepipe" tail dronedelivery.requests --from-time "$since" --timeout-ms 3000 >"$wf_tmp/bulk.req" 2>/dev/null
lat=$(pycheck '
ev = events(sys.argv[1], set(ids(sys.argv[2])))
req = events(sys.argv[3], set(ids(sys.argv[2])))
lat = sorted([x for x in ev[k] if x["stage"] == "Scheduled"][0]["_at"] - req[k][0]["_at"] for k in ev)
q = lambda p: lat[min(len(lat) - 1, int(round(p * (len(lat) - 1))))]
print("n=%d p50=%dms p90=%dms p99=%dms max=%dms" % (len(lat), q(0.5), q(0.9), q(0.99), lat[-1]))' \
	"$wf_tmp/bulk.ev" "$wf_tmp/bulk.ids" "$wf_tmp/bulk.req")
check "bulk: POST->Scheduled latency measured ($lat)" [ -n "$lat" ]

# reschedule after assignment (HeadedToPickup): a Rescheduled event with the new values
r1=$(sed -n 2p "$wf_tmp/bulk.ids")
resp=$(curl -s -w '%{http_code}' -X PATCH "$ingress/api/deliveryrequests/$r1" -H 'Content-Type: application/json' \
	-d '{"dropOffLocation":"47.70,-122.30","pickupTime":1795780000000,"deadline":"rescheduled"}')
check "reschedule after assignment: PATCH -> 200" [ "${resp: -3}" = 200 ]
wait_until 30 has_stage "$r1" "$since" Rescheduled
check "reschedule after assignment: Rescheduled" [ $? -eq 0 ]
# reschedule right after the POST (before the drone is assigned, most likely)
r2=$(post_one bulk-r 0)
echo "$r2" >>"$all_ids"
resp=$(curl -s -w '%{http_code}' -X PATCH "$ingress/api/deliveryrequests/$r2" -H 'Content-Type: application/json' \
	-d '{"dropOffLocation":"47.71,-122.31","pickupTime":1795790000000}')
check "reschedule at once: PATCH -> 200" [ "${resp: -3}" = 200 ]
wait_until 60 has_stage "$r2" "$since" Rescheduled && wait_until 60 has_stage "$r2" "$since" Scheduled
check "reschedule at once: Rescheduled and Scheduled" [ $? -eq 0 ]
events_since "$since" "$wf_tmp/bulk2.ev"
check "reschedule after assignment: new values, same drone, next version, ETAs recomputed" pycheck '
e = distinct(events(sys.argv[1])[sys.argv[2]])
assert stages(e) == ["Created", "Scheduled", "HeadedToPickup", "Rescheduled"], stages(e)
r, h = e[3], e[2]
assert r["version"] == 4
assert r["dropOffLocation"] == "47.70,-122.30" and abs(r["dropoff"]["latitude"] - 47.70) < 1e-9 and abs(r["dropoff"]["longitude"] + 122.30) < 1e-9, r["dropoff"]
assert r["pickupTime"] == 1795780000000 and r["deadline"] == "rescheduled", (r["pickupTime"], r["deadline"])
assert r["pickupLocation"] == h["pickupLocation"] and r["packageId"] == h["packageId"]
assert r["droneId"] == h["droneId"]
assert r["deliveryEta"] != h["deliveryEta"], "deliveryEta not recomputed"' "$wf_tmp/bulk2.ev" "$r1"
check "reschedule at once: the latest event carries the new values" pycheck '
e = distinct(events(sys.argv[1])[sys.argv[2]])
assert "Rescheduled" in stages(e) and "Scheduled" in stages(e), stages(e)
print("reschedule at once: %s" % " ".join(stages(e)), file=sys.stderr)
last = e[-1]
assert last["dropOffLocation"] == "47.71,-122.31" and last["pickupTime"] == 1795790000000, last
assert [x["version"] for x in e] == list(range(1, len(e) + 1))' "$wf_tmp/bulk2.ev" "$r2"
# cancel one Scheduled delivery of the bulk
c1=$(sed -n 3p "$wf_tmp/bulk.ids")
check "bulk: cancel a Scheduled delivery: DELETE -> 204" [ "$(http_code -X DELETE "$ingress/api/deliveryrequests/$c1")" = 204 ]
wait_until 30 has_stage "$c1" "$since" Cancelled
check "bulk: the cancelled delivery ends Cancelled" [ $? -eq 0 ]
wait_until 30 assignment_is "$c1" "$(stage_field "$c1" "$since" Scheduled droneId)" released
check "bulk: its drone is released" [ $? -eq 0 ]
wait_until 60 quiet $workflow_port $package_port $scheduler_port || bad "bulk: pipeline at rest"
phase_done bulk

# --- ferret: the MongoDB-API server stopped for 10 s mid-run ---
if [ -n "${DP_TEST_STACK_DIR:-}" ]; then
	stop_stores
	start_stores ferret 170 DP_OWNER_MAX_IN_FLIGHT=0
	dlq_keys "$wf_tmp/dlqF0.keys"
	since=$(now_ms)
	# 150 deliveries posted over ~15 s; FerretDB stops once 20 are Scheduled, for 10 s
	post_many ferret 150 "$wf_tmp/ferret.all" 1 0.08 &
	poster=$!
	wait_until 60 at_least "$wf_tmp/ferret.all" "$since" 20 Scheduled || bad "ferret: 20 Scheduled before the outage"
	( . "$root/scripts/lib-stack.sh" && stop_component ferretdb 30 ) >/dev/null
	t=$SECONDS
	n_at_stop=$(count_since "$wf_tmp/ferret.all" "$since" Scheduled)
	posted_at_stop=$(wc -l <"$wf_tmp/ferret.all")
	# the outage itself lasts 10 s (the scenario, not a wait for a condition)
	sleep $((10 - (SECONDS - t) > 0 ? 10 - (SECONDS - t) : 0))
	n_in_outage=$(count_since "$wf_tmp/ferret.all" "$since" Scheduled)
	posted_in_outage=$(wc -l <"$wf_tmp/ferret.all")
	check "ferret: FerretDB stopped mid-run ($n_at_stop of $posted_at_stop posted were Scheduled)" [ "$posted_at_stop" -lt 150 ]
	check "ferret: deliveries wait while FerretDB is down ($n_in_outage of $posted_in_outage Scheduled after 10 s)" \
		[ "$n_in_outage" -lt "$posted_in_outage" ]
	"$root/scripts/stack.sh" infra-up >/dev/null 2>&1 || bad "ferret: FerretDB restarted"
	t=$SECONDS
	wait "$poster"
	check "ferret: 150 POSTs -> 202 (the ingress needs no store)" [ $? -eq 0 ]
	cat "$wf_tmp/ferret.all" >>"$all_ids"
	wait_all 180 "$wf_tmp/ferret.all" "$since" Scheduled
	check "ferret: all 150 deliveries Scheduled after FerretDB returns ($((SECONDS - t))s)" [ $? -eq 0 ]
	retries=$(($(metric $package_port '^dronepipe_stage_retries_total') + $(metric $scheduler_port '^dronepipe_stage_retries_total')))
	check "ferret: the stores retried during the outage ($retries retries)" [ "$retries" -gt 0 ]
	wait_until 60 quiet $workflow_port $package_port $scheduler_port || bad "ferret: pipeline at rest"
	dlq_keys "$wf_tmp/dlqF1.keys"
	check "ferret: no record dead-lettered" pycheck '
before = open(sys.argv[1]).read().split(); after = open(sys.argv[2]).read().split()
ours = set(ids(sys.argv[3]))
new = len(after) - len(before)
assert new == 0, "%d new dead letters (%d of our deliveries)" % (new, len([k for k in after[len(before):] if k in ours]))' \
		"$wf_tmp/dlqF0.keys" "$wf_tmp/dlqF1.keys" "$wf_tmp/ferret.all"
	events_since "$since" "$wf_tmp/ferret.ev"
	check_stores ferret "$wf_tmp/ferret.all" "$wf_tmp/ferret.ev" "wfpkg_ferret_$run_id" "wfsch_ferret_$run_id"
else
	echo "skip - FerretDB outage needs the isolated stack of scripts/test-it.sh"
fi
phase_done ferret

# --- crash: kill -9 of the workflow during a run ---
stop_stores
start_stores crash $((crash_n + 30)) DP_OWNER_MAX_IN_FLIGHT=0
dlq_keys "$wf_tmp/dlq2.keys"
since=$(now_ms)
t=$SECONDS
# paced (6 connections, 0.2 s apart: ~30/s), so the kill lands while requests still come in
post_many crash "$crash_n" "$wf_tmp/crash.ids" 6 0.2 &
post_pid=$!
wait_until 120 at_least "$wf_tmp/crash.ids" "$since" $((crash_n / 4)) Scheduled
n_kill=$(count_since "$wf_tmp/crash.ids" "$since" Scheduled)
svc_stop "$workflow_pid" KILL
check "crash: workflow killed with -9 while $n_kill of $crash_n were Scheduled" [ "$n_kill" -lt "$crash_n" ]
start_workflow wf-workflow-3 "${wf_long[@]}"
wait "$post_pid"
check "crash: $crash_n POSTs -> 202" [ $? -eq 0 ]
cat "$wf_tmp/crash.ids" >>"$all_ids"
wait_all 300 "$wf_tmp/crash.ids" "$since" Scheduled Failed Cancelled Completed
check "crash: all $crash_n deliveries reach Scheduled or a finished stage after the restart ($((SECONDS - t))s)" [ $? -eq 0 ]
wait_until 120 quiet $workflow_port $package_port $scheduler_port || bad "crash: pipeline at rest"
events_since "$since" "$wf_tmp/crash.ev"
check "crash: one outcome per version, no second Scheduled, all Scheduled" pycheck '
ev = events(sys.argv[1], set(ids(sys.argv[2])))
assert len(ev) == len(ids(sys.argv[2])), len(ev)
raw = sum(len(e) for e in ev.values()); dist = 0; notsched = []
for k, e in ev.items():
    byver = {}
    for x in e: byver.setdefault(x["version"], set()).add((x["eventId"], x["stage"], x["droneId"]))
    assert all(len(v) == 1 for v in byver.values()), (k, byver)
    d = distinct(e); dist += len(d)
    assert len({x["droneId"] for x in d if x["stage"] == "Scheduled"}) <= 1, (k, stages(d))
    assert stages(d).count("Scheduled") <= 1, (k, stages(d))
    if stages(d) != ["Created", "Scheduled", "HeadedToPickup"]: notsched.append((k, stages(d)))
print("crash: %d lifecycle records, %d distinct events (%d re-emitted)" % (raw, dist, raw - dist), file=sys.stderr)
assert not notsched, notsched[:5]' "$wf_tmp/crash.ev" "$wf_tmp/crash.ids"
check_stores crash "$wf_tmp/crash.ids" "$wf_tmp/crash.ev" "wfpkg_crash_$run_id" "wfsch_crash_$run_id"
dlq_keys "$wf_tmp/dlq3.keys"
check "crash: no record dead-lettered" [ "$(wc -l <"$wf_tmp/dlq3.keys")" -eq "$(wc -l <"$wf_tmp/dlq2.keys")" ]
phase_done crash

# --- replay: the workflow group back to the start of its inputs ---
events_since "$t_start" "$wf_tmp/replay0.ev"
mongo_find_json "wfsch_crash_$run_id" assignments >"$wf_tmp/replay0.asg"
svc_stop "$workflow_pid"
inputs=0
for tp in requests package.events drone.events; do
	inputs=$((inputs + $("$bin/dronepipe" tail "dronedelivery.$tp" --from-beginning --timeout-ms 3000 2>/dev/null | wc -l)))
done
reset_workflow_group >"$wf_tmp/reset.out" 2>&1
check "replay: group workflow reset to the earliest offsets" grep -q 'dronedelivery.requests' "$wf_tmp/reset.out"
t=$SECONDS
start_workflow wf-workflow-4 "${wf_long[@]}"
wait_until 240 metric_at_least $workflow_port '^dronepipe_stage_records_total' "$inputs"
check "replay: the workflow consumed its $inputs input records again" [ $? -eq 0 ]
wait_until 240 quiet $workflow_port $package_port $scheduler_port
check "replay: pipeline at rest again ($((SECONDS - t))s)" [ $? -eq 0 ]
events_since "$t_start" "$wf_tmp/replay1.ev"
check "replay: no new lifecycle outcome (same eventIds, versions, stages, drones per delivery)" pycheck '
ours = set(ids(sys.argv[3]))
b = events(sys.argv[1], ours); a = events(sys.argv[2], ours)
key = lambda e: sorted((x["version"], x["eventId"], x["stage"], x["droneId"]) for x in distinct(e))
changed = [k for k in ours if key(b.get(k, [])) != key(a.get(k, []))]
nb = sum(len(e) for e in b.values()); na = sum(len(e) for e in a.values())
print("replay: %d lifecycle records before, %d after (%d re-emitted with known eventIds)" % (nb, na, na - nb), file=sys.stderr)
for k in changed[:3]:
    print("  changed %s: %s -> %s" % (k, key(b.get(k, [])), key(a.get(k, []))), file=sys.stderr)
assert not changed, "%d deliveries changed" % len(changed)
for k, e in a.items():
    assert len({x["droneId"] for x in e if x["stage"] == "Scheduled"}) <= 1, k' \
	"$wf_tmp/replay0.ev" "$wf_tmp/replay1.ev" "$all_ids"
# compact_changelog -> every finished saga of this test has a latest changelog state without an
# outbox (written once its inputs were stored, live or after the replay caught up)
compact_changelog() {
	"$bin/dronepipe" tail dronedelivery.workflow.state --from-beginning --timeout-ms 3000 \
		>"$wf_tmp/state.json" 2>/dev/null || return 1
	pycheck '
ours = set(ids(sys.argv[2]))
last = {}
for line in open(sys.argv[1]):
    try: r = json.loads(line)
    except ValueError: continue
    if r.get("key") in ours: last[r["key"]] = r.get("value")
fin = {k: v for k, v in last.items() if v and v.get("finished")}
full = [k for k, v in fin.items() if v.get("outbox")]
print("replay: %d finished sagas, %d with an outbox left" % (len(fin), len(full)), file=sys.stderr)
assert fin and not full, full[:3]' "$wf_tmp/state.json" "$all_ids"
}
wait_until 60 compact_changelog
check "replay: every finished saga's latest changelog state is kept without its outbox" compact_changelog
# The workflow holds a finished saga without outbox that applied at most 8 inputs as settled
# (status and seen eventIds only); the others stay whole (fleet5's Failed ones retried often).
settled_in_changelog() {
	pycheck '
last = {}
for line in open(sys.argv[1]):
    try: r = json.loads(line)
    except ValueError: continue
    last[r.get("key")] = r.get("value")
n = sum(1 for v in last.values() if v and v.get("finished") and not v.get("outbox")
        and len(v.get("seenEventIds") or []) <= 8)
print(n)' "$wf_tmp/state.json"
}
expected=$(settled_in_changelog)
settled_now() { [ "$(metric $workflow_port '^dronepipe_workflow_sagas_settled')" = "$expected" ]; }
wait_until 30 settled_now
check "replay: the $expected finished sagas of at most 8 inputs are held settled" \
	[ $? -eq 0 -a "${expected:-0}" -gt 0 ]
# A late DroneAssigned (an eventId the saga never saw) to a settled saga: its drone is released
# as for a whole finished saga (saga.h: saga_settled_state); the same record again releases it
# again with the same eventId (a settled saga keeps no outbox to re-send from).
k=$(pycheck '
last = {}
for line in open(sys.argv[1]):
    try: r = json.loads(line)
    except ValueError: continue
    last[r.get("key")] = r.get("value")
print(next((k for k, v in sorted(last.items()) if v and v.get("finished") and not v.get("outbox")
            and len(v.get("seenEventIds") or []) <= 8), ""))' "$wf_tmp/state.json")
late_drone="drone-late-$run_id"
late=$(python3 -c 'import json, sys, time, uuid
pt = {"latitude": 47.6, "longitude": -122.3, "altitude": 0.0}
print(json.dumps({"eventId": str(uuid.uuid4()), "deliveryId": sys.argv[1], "droneId": sys.argv[2],
                  "position": pt, "assignedAt": int(time.time() * 1000), "pickup": pt, "dropoff": pt}))' \
	"$k" "$late_drone")
check "settled: a late DroneAssigned of $late_drone fed to settled delivery $k" \
	"$build/tests/it/dronesim_feed" dronedelivery.drone.events "$k" DroneAssigned "$late"
# late_releases N -> true when N ReleaseDrone commands of the late drone (compensation) exist,
# all with one eventId
late_releases() {
	"$bin/dronepipe" tail dronedelivery.drone.commands --key "$k" --from-beginning \
		--timeout-ms 2000 2>/dev/null >"$wf_tmp/late.json"
	pycheck '
rs = [json.loads(l) for l in open(sys.argv[1]) if sys.argv[2] in l]
rs = [r for r in rs if r.get("value", {}).get("droneId") == sys.argv[2]]
assert len(rs) == int(sys.argv[3]), len(rs)
assert all(r["value"].get("reason") == "compensation" for r in rs)
assert len({r["value"]["eventId"] for r in rs}) == 1' "$wf_tmp/late.json" "$late_drone" "$1" 2>/dev/null
}
wait_until 30 late_releases 1
check "settled: $late_drone is released (ReleaseDrone, reason compensation)" [ $? -eq 0 ]
"$build/tests/it/dronesim_feed" dronedelivery.drone.events "$k" DroneAssigned "$late" ||
	bad "settled: the same DroneAssigned fed again"
wait_until 30 late_releases 2
check "settled: the same DroneAssigned again releases it again with the same eventId" [ $? -eq 0 ]
mongo_find_json "wfsch_crash_$run_id" assignments >"$wf_tmp/replay1.asg"
check "replay: the crash phase's deliveries keep their drones" pycheck '
b = {d["_id"]: d for d in json.load(open(sys.argv[1]))}; a = {d["_id"]: d for d in json.load(open(sys.argv[2]))}
for k in ids(sys.argv[3]):
    assert a[k]["droneId"] == b[k]["droneId"] and a[k]["status"] == b[k]["status"], (k, b[k], a[k])' \
	"$wf_tmp/replay0.asg" "$wf_tmp/replay1.asg" "$wf_tmp/crash.ids"
mongo_find_json "wfpkg_crash_$run_id" packages >"$wf_tmp/replay1.pkg"
check "replay: still one package document per delivery of the crash phase" pycheck '
ours = set(ids(sys.argv[2])); docs = [d for d in json.load(open(sys.argv[1])) if d["deliveryId"] in ours]
assert len(docs) == len(ours) and {d["deliveryId"] for d in docs} == ours, (len(docs), len(ours))' \
	"$wf_tmp/replay1.pkg" "$wf_tmp/crash.ids"
phase_done replay

# --- restore: a saga whose last changelog value does not decode keeps its last readable state ---
sagas_now() { metric $workflow_port '^dronepipe_workflow_sagas$'; }
sagas=$(sagas_now)
k=$(head -n1 "$wf_tmp/crash.ids")
part=$(kcat -C -b "$DP_KAFKA_BROKERS" -t dronedelivery.workflow.state -o beginning -e -q \
	-f '%k %p\n' 2>/dev/null | awk -v k="$k" '$1 == k {print $2; exit}')
check "restore: $k has changelog records (partition $part)" [ -n "$part" ]
svc_stop "$workflow_pid"
printf '%s:not an avro record\n' "$k" |
	kcat -P -b "$DP_KAFKA_BROKERS" -t dronedelivery.workflow.state -p "$part" -K: 2>/dev/null
check "restore: a value that is not a SagaState written last for $k" [ $? -eq 0 ]
start_workflow wf-workflow-5 "${wf_long[@]}"
sagas_are() { [ "$(sagas_now)" = "$1" ]; }
wait_until 60 sagas_are "$sagas"
check "restore: all $sagas sagas restored, $k's from its last readable state" [ $? -eq 0 ]
check "restore: the unreadable value is logged with its delivery" \
	grep -q "saga_state_unreadable.*$k" "$logdir/wf-workflow-5.log"
phase_done restore

# --- early reply: a reply read before its request, as after a crash between a command and its
# saga state: retried until the request (behind the committed offset) makes the saga ---
svc_stop "$workflow_pid"
stop_stores
start_stores early 3 # the crash phase's fleet is held by its deliveries
since=$(now_ms)
post_one early 1 >"$wf_tmp/early.ids"
k=$(cat "$wf_tmp/early.ids")
cat "$wf_tmp/early.ids" >>"$all_ids"
check "early: a request accepted while the workflow is down ($k)" [ -n "$k" ]
reply=$(python3 -c 'import json, sys, time, uuid
print(json.dumps({"eventId": str(uuid.uuid4()), "deliveryId": sys.argv[1], "packageId": "pkg-early-1-0",
                  "ownerId": "owner-early-1", "size": "Small", "weight": 1.5,
                  "createdAt": int(time.time() * 1000)}))' "$k")
check "early: its PackageCreated written before the workflow reads the request" \
	"$build/tests/it/dronesim_feed" dronedelivery.package.events "$k" PackageCreated "$reply"
start_workflow wf-workflow-6 "${wf_long[@]}"
wait_all 60 "$wf_tmp/early.ids" "$since" Scheduled
check "early: the delivery reaches Scheduled" [ $? -eq 0 ]
dlq_keys "$wf_tmp/dlq8.keys"
check "early: the early reply is not dead-lettered" [ -z "$(grep -Fx "$k" "$wf_tmp/dlq8.keys")" ]
if grep -q "no saga for delivery $k yet" "$logdir/wf-workflow-6.log"; then
	echo "# early: the reply was read first and retried"
else
	echo "# early: the request was read first this time"
fi
phase_done early

# --- order: a saga's state is written before its commands and lifecycle events; while the
# changelog refuses the state, nothing of the delivery goes out; then it goes out once ---
refused() { [ "$(grep -c 'reply_not_acknowledged.*dronedelivery.requests' "$logdir/wf-workflow-6.log")" -ge "$1" ]; }
before=$(grep -c 'reply_not_acknowledged.*dronedelivery.requests' "$logdir/wf-workflow-6.log")
check "order: the changelog set to refuse saga states (max.message.bytes=256)" \
	topic_config dronedelivery.workflow.state --add-config max.message.bytes=256 >"$wf_tmp/cfg1.out" 2>&1
since=$(now_ms)
post_one order 1 >"$wf_tmp/order.ids"
k=$(cat "$wf_tmp/order.ids")
cat "$wf_tmp/order.ids" >>"$all_ids"
wait_until 60 refused $((before + 3))
check "order: the request's state write refused three times ($k)" [ $? -eq 0 ]
"$bin/dronepipe" tail dronedelivery.package.commands --from-time "$since" --key "$k" --timeout-ms 2000 \
	>"$wf_tmp/order.cmds" 2>/dev/null
check "order: no CreatePackage sent while its state is refused" [ ! -s "$wf_tmp/order.cmds" ]
check "order: no lifecycle event sent while its state is refused" \
	[ "$(count_since "$wf_tmp/order.ids" "$since" Created Scheduled)" = 0 ]
check "order: the changelog takes saga states again" \
	topic_config dronedelivery.workflow.state --delete-config max.message.bytes >"$wf_tmp/cfg2.out" 2>&1
wait_all 60 "$wf_tmp/order.ids" "$since" Scheduled
check "order: then the delivery reaches Scheduled" [ $? -eq 0 ]
created=$("$bin/dronepipe" tail dronedelivery.delivery.events --from-time "$since" --key "$k" --timeout-ms 1000 2>/dev/null |
	grep -c '"stage":"Created"')
check "order: its Created event was sent once ($created)" [ "$created" = 1 ]
phase_done order

# --- unsent: a timer transition writes its state (marked unsentCause) before its outputs; a
# workflow that restores a state so marked (a crash before the outputs were acknowledged)
# re-sends that cause's outbox entries, same eventIds, then writes the state unmarked ---
k=$(cat "$wf_tmp/order.ids")
"$bin/dronepipe" tail dronedelivery.workflow.state --from-beginning --key "$k" --timeout-ms 3000 \
	>"$wf_tmp/unsent.state" 2>/dev/null
python3 - "$wf_tmp/unsent.state" "$wf_tmp/unsent.json" "$wf_tmp/unsent.expect" <<'PY'
import json, sys
last = None
for line in open(sys.argv[1]):
    try: last = json.loads(line)["value"] or last
    except (ValueError, KeyError): pass
st = last or {}
cause = st.get("eventId")
entries = [e for e in st.get("outbox", []) if e.get("causeId") == cause]
st["unsentCause"] = cause
open(sys.argv[2], "w").write(json.dumps(st))
with open(sys.argv[3], "w") as fh:
    for e in entries: fh.write("%s %s\n" % (e["topic"], e["eventId"]))
PY
check "unsent: $k's latest state has outputs of its last cause in its outbox ($(wc -l <"$wf_tmp/unsent.expect"))" [ -s "$wf_tmp/unsent.expect" ]
svc_stop "$workflow_pid"
check "unsent: its state written again, marked unsentCause (as a crash after the state leaves it)" \
	"$build/tests/it/dronesim_feed" dronedelivery.workflow.state "$k" SagaState "$(cat "$wf_tmp/unsent.json")"
since=$(now_ms)
start_workflow wf-workflow-7 "${wf_long[@]}"
resent() {
	local topic id
	while read -r topic id; do
		"$bin/dronepipe" tail "$topic" --from-time "$since" --key "$k" --timeout-ms 1000 2>/dev/null |
			grep -q "\"eventId\":\"$id\"" || return 1
	done <"$wf_tmp/unsent.expect"
}
wait_until 60 resent
check "unsent: after the restart every output of that cause went out again, with its eventId" [ $? -eq 0 ]
unmarked() {
	"$bin/dronepipe" tail dronedelivery.workflow.state --from-time "$since" --key "$k" --timeout-ms 1000 \
		2>/dev/null | tail -n1 | grep -q '"unsentCause":null'
}
wait_until 30 unmarked
check "unsent: then its state is written without the mark" [ $? -eq 0 ]
wait_until 10 grep -q "saga_outputs_resent.*$k" "$logdir/wf-workflow-7.log"
check "unsent: the re-send is logged" [ $? -eq 0 ]
phase_done unsent

# --- a deliveryId longer than a saga is kept for (127 bytes): dead-lettered with the reason,
# not kept under an id the restore could not read back ---
long=$(printf 'd%.0s' $(seq 200))
k=$(head -n1 "$all_ids") # a request of this test: its first record is its DeliveryRequested
"$bin/dronepipe" tail dronedelivery.requests --from-beginning --key "$k" --limit 1 --timeout-ms 2000 \
	2>/dev/null | python3 -c 'import json, sys, uuid
r = json.loads(sys.stdin.readline()); assert r["type"].endswith(".DeliveryRequested"), r["type"]
v = r["value"]
v["deliveryId"] = sys.argv[1]; v["eventId"] = str(uuid.uuid4())
print(json.dumps(v))' "$long" >"$wf_tmp/long.json"
check "long id: a DeliveryRequested with a 200-byte deliveryId produced" \
	"$build/tests/it/dronesim_feed" dronedelivery.requests "$long" DeliveryRequested "$(cat "$wf_tmp/long.json")"
long_dead() {
	"$bin/dronepipe" tail dronedelivery.requests.dlq --from-beginning --key "$long" --timeout-ms 1000 \
		2>/dev/null | grep -q 'DeliveryRequested: deliveryId of 200 bytes (at most 127)'
}
wait_until 60 long_dead
check "long id: dead-lettered, the reason naming its length" [ $? -eq 0 ]
check "long id: no lifecycle event and no command for it" [ -z "$(
	for t in delivery.events package.commands drone.commands workflow.state; do
		"$bin/dronepipe" tail "dronedelivery.$t" --from-beginning --key "$long" --timeout-ms 1000 2>/dev/null
	done)" ]
phase_done long

dlq_keys "$wf_tmp/dlq9.keys"
check "no record of this test's deliveries was dead-lettered" pycheck '
before = open(sys.argv[1]).read().split(); after = open(sys.argv[2]).read().split()
ours = set(ids(sys.argv[3])); new = after[len(before):]
print("dead letters during the test: %d (of other deliveries: %d)" % (len(new), len([k for k in new if k not in ours])), file=sys.stderr)
assert not [k for k in new if k in ours]' "$wf_tmp/dlq0.keys" "$wf_tmp/dlq9.keys" "$all_ids"

echo "# timings: ${timing[*]} total=$((SECONDS - T0))s"
echo "# bulk latency POST->Scheduled: $lat"
finish test_workflow
