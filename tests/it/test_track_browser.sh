#!/usr/bin/env bash
# Browser test of the live tracking page GET /track/{id}: dronepipe-delivery on port 18295 against
# the runner's Kafka and Redis (scripts/test-it.sh; or set DP_KAFKA_BROKERS, DP_REDIS_URL by hand),
# a delivery fed step by step with build/tests/it/delivery_feed, and headless Chromium (Debian
# package) driven by playwright-core: tests/browser/track.mjs opens the page, asks for each next
# part of the flight (files want-N in a signal folder) and checks that the stage, the ETAs and the
# drone marker follow, that the page loads nothing from outside 127.0.0.1 and raises no error.
# Screenshots: $DP_TEST_BUILD/it-logs/track-*.png. Needs `scripts/install-deps.sh browser`.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
trap stop_children EXIT

port=18295
base=http://127.0.0.1:$port
feed=$build/tests/it/delivery_feed
chromium=${DP_CHROMIUM:-/usr/bin/chromium}
browser_dir=$root/tests/browser
redis_url=${DP_REDIS_URL:-redis://127.0.0.1:6379}
svc_env=("DP_HTTP_PORT=$port" DP_REDIS_URL="$redis_url" DP_COMMIT_INTERVAL_MS=200
	DP_RETRY_BACKOFF_MAX_MS=1000 DP_KAFKA_PROP_session_timeout_ms=6000
	DP_KAFKA_PROP_heartbeat_interval_ms=1000 DP_LOG_LEVEL=info)

# --- prerequisites: never skipped silently ------------------------------------------------------
missing=
[ -x "$feed" ] || missing+=" build/tests/it/delivery_feed (make build/tests/it/delivery_feed)"
[ -x "$bin/dronepipe-delivery" ] || missing+=" build/bin/dronepipe-delivery (make bins)"
[ -x "$chromium" ] || missing+=" $chromium (run scripts/install-deps.sh browser)"
command -v node >/dev/null || missing+=" node (install node 20, then run scripts/install-deps.sh browser)"
[ -f "$browser_dir/node_modules/playwright-core/package.json" ] ||
	missing+=" tests/browser/node_modules/playwright-core (run scripts/install-deps.sh browser)"
if [ -n "$missing" ]; then
	bad "browser test prerequisites missing:$missing"
	finish test_track_browser
	exit 1
fi

# gen ID STEP -> JSON lines for delivery_feed, times around now. The flight: start -> pickup in
# three positions, then to the drop-off in three. STEP 0: Created, Scheduled, HeadedToPickup and
# the first two positions; 1: at the pickup, HeadedToDropoff, 1/3 of the way; 2: 2/3 of the way;
# 3: at the drop-off (Arrived), Completed.
gen() {
	python3 - "$@" <<'PY'
import json, sys, time, uuid
did, step = sys.argv[1], int(sys.argv[2])
now = int(time.time() * 1000)
pickup = {"latitude": 47.61, "longitude": -122.33, "altitude": 0.0}
dropoff = {"latitude": 47.66, "longitude": -122.30, "altitude": 0.0}
start = {"latitude": 47.58, "longitude": -122.38}
stages = ["Created", "Scheduled", "HeadedToPickup", "HeadedToDropoff", "Completed"]
def lc(v):
    e = {"eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, did + "/lc/" + str(v))), "deliveryId": did,
         "stage": stages[v - 1], "version": v, "time": now, "causationId": None,
         "requestedAt": now - 120000, "ownerId": "it-track-owner", "pickupLocation": "47.61,-122.33",
         "pickup": pickup, "dropOffLocation": "47.66,-122.30", "dropoff": dropoff,
         "pickupTime": now + 600000, "deadline": "today", "expedited": True,
         "confirmationRequired": "None", "packageId": "pkg-" + did[:8],
         "droneId": None if v < 2 else "drone-7", "pickupEta": None, "deliveryEta": None,
         "reason": None}
    if v >= 2:  # as the workflow plans them: at assignment, then the actual pickup time
        e["pickupEta"] = now + 4 * 60000 if v < 4 else now - 1000
        e["deliveryEta"] = now + 12 * 60000 if v < 4 else now + 8 * 60000
    return {"schema": "DeliveryLifecycle", "value": e}
def tm(seq):
    leg, f = (start, pickup, "ToPickup") if seq < 3 else (pickup, dropoff, "ToDropoff"), (seq % 3 + 1) / 3
    a, b, phase = leg
    if seq == 5:
        phase = "Arrived"
    return {"schema": "DroneTelemetry", "value": {
        "eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, did + "/tm/" + str(seq))), "deliveryId": did,
        "droneId": "drone-7", "phase": phase,
        "latitude": a["latitude"] + (b["latitude"] - a["latitude"]) * f,
        "longitude": a["longitude"] + (b["longitude"] - a["longitude"]) * f,
        "altitude": 120.0, "speedMps": 12.5, "time": now, "seq": seq,
        "pickup": pickup, "dropoff": dropoff}}
out = {0: [lc(1), lc(2), lc(3), tm(0), tm(1)], 1: [tm(2), lc(4), tm(3)], 2: [tm(4)],
       3: [tm(5), lc(5)]}[step]
for o in out:
    print(json.dumps(o))
PY
}
get() { curl -s -m 5 "$base$1"; }
status_is() { # status_is ID STAGE LATITUDE -> the API shows that stage and position
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); l=d["lastKnownLocation"]
sys.exit(not (d["stageName"]==sys.argv[2] and l and abs(l["latitude"]-float(sys.argv[3]))<1e-9))' \
		"$(get "/api/deliveries/$1/status")" "$2" "$3"
}
# feed_step ID STEP -> produces the step's records, waits for the acknowledgements. Lifecycle and
# telemetry travel on two topics, so their relative order is not kept: in step 3 the last
# position is applied before Completed is produced (the page's stream ends at Completed).
feed_step() {
	local f=$logdir/track-feed-$2.jsonl
	gen "$1" "$2" >"$f" || return 1
	if [ "$2" = 3 ]; then
		head -n 1 "$f" | "$feed" >/dev/null &&
			wait_until 15 status_is "$1" HeadedToDropoff 47.66 &&
			tail -n +2 "$f" | "$feed" >/dev/null
	else
		"$feed" <"$f" >/dev/null
	fi
}

id=$(python3 -c 'import uuid; print(uuid.uuid4())')
signal=$(mktemp -d)
rm -f "$logdir"/track-*.png

start_service dronepipe-delivery delivery-track "${svc_env[@]}" >/dev/null
wait_until 30 curl -sf "$base/readyz"
expect "dronepipe-delivery ready on :$port"

feed_step "$id" 0
expect "feed: Created, Scheduled, HeadedToPickup and two positions acknowledged"
wait_until 20 status_is "$id" HeadedToPickup 47.60
expect "the delivery is HeadedToPickup at its second position (API)"

# The browser runs in the background; the shell feeds each next step when it asks for it.
(cd "$browser_dir" && exec node track.mjs --base "$base" --id "$id" --signal "$signal" --shots "$logdir") \
	>"$logdir/track-browser.log" 2>&1 &
node_pid=$!
children+=("$node_pid")
for step in 1 2 3; do
	wait_until 40 bash -c "[ -e '$signal/want-$step' ] || ! kill -0 $node_pid 2>/dev/null"
	[ -e "$signal/want-$step" ] || break # the browser failed before; its log says why
	feed_step "$id" "$step"
	expect "feed: step $step of the flight acknowledged (asked for by the page)"
done
wait "$node_pid"
node_rc=$?
children=("${children[@]:0:${#children[@]}-1}") # node is done: only the service remains
cat "$logdir/track-browser.log"
# the browser's own checks count as this test's
n=$(grep -c '^ok ' "$logdir/track-browser.log")
m=$(grep -c '^FAIL ' "$logdir/track-browser.log")
passes=$((passes + n))
fails=$((fails + m))
check "tests/browser/track.mjs exit status 0 (got $node_rc)" [ "$node_rc" -eq 0 ]
shots=$(find "$logdir" -maxdepth 1 -name "track-*.png" | wc -l)
check "screenshots saved ($shots: $logdir/track-*.png)" [ "$shots" -ge 3 ]
rm -rf "$signal"

finish test_track_browser
