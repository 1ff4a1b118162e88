#!/usr/bin/env bash
# Integration test of the HTTP edge's bounds (pipeline/http.c) on real services against the real
# broker and Redis (scripts/test-it.sh provides them): the connection cap per client address
# (127.0.0.2 is a second client address on loopback), the request deadline for a client sending
# its headers or its body slowly (the server's close is awaited with a bounded wait), a kept-alive
# connection's next request getting a deadline of its own, 413 answered before the body is sent
# and the connection closed, a chunked body past the limit cut off, the stream cap per address on
# dronepipe-delivery's live tracking; then the ingress's drain on SIGTERM: new connections
# refused, every request in flight answered 202 once Kafka acknowledged it (and its record on the
# topic), or 503 when the shutdown time runs out first, and a clean exit either way.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
trap stop_children EXIT

probe=(python3 "$root/tests/it/lib/http_probe.py")
# probe_check DESCRIPTION ARGS... -> runs the probe, shows its findings, ok when it exits 0
probe_check() {
	local what=$1 out
	shift
	out=$("${probe[@]}" "$@" 2>&1)
	local rc=$?
	printf '%s\n' "$out" | sed 's/^/       /'
	if [ $rc -eq 0 ]; then ok "$what"; else bad "$what"; fi
}
metric() { # PORT NAME{LABELS} -> value (0 when absent)
	curl -s -m 5 "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2; f=1} END {if (!f) print 0}'
}
body='{"ownerId":"owner-limits","pickupLocation":"47.61,-122.33","dropOffLocation":"47.62,-122.30",
"pickupTime":"2026-11-27T10:00:00Z","confirmationRequired":"None",
"packageInfo":{"packageId":"pkg-limits","size":"Small","weight":1.5}}'

if ! python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2", 0))' 2>/dev/null; then
	bad "127.0.0.2 is usable as a second client address on loopback"
	finish test_http_limits
	exit 1
fi

# --- ingress with small bounds -----------------------------------------------------------------
port=18380
base=http://127.0.0.1:$port
start_service dronepipe-ingress limits-ingress DP_HTTP_PORT=$port DP_HTTP_MAX_CONN_PER_IP=8 DP_INGRESS_ACK_TIMEOUT_MS=1500 \
	DP_HTTP_REQUEST_TIMEOUT_MS=2000 DP_HTTP_MAX_BODY=4096 >/dev/null
wait_until 30 curl -sf "$base/readyz" || bad "ingress ready"

probe_check "connection cap: 8 connections from 127.0.0.1 served, the 9th closed unanswered, 127.0.0.2 served meanwhile, a freed slot usable again" \
	conn-cap $port 8
check "the refused connection is counted (connection_limit)" \
	[ "$(metric $port 'dronepipe_ingress_http_refused_total{reason="connection_limit"}')" -ge 1 ]

probe_check "request deadline: headers sent a byte every 200 ms are cut off at 2 s, unanswered" \
	slow-head $port 2000
probe_check "request deadline: a body sent a byte every 200 ms is cut off at 2 s, unanswered" \
	slow-body $port 2000 /api/deliveryrequests
probe_check "request deadline: a kept-alive connection's next request gets its own deadline; idle, it is closed at the deadline" \
	keepalive $port 2000
check "the connections cut at the deadline are counted (request_timeout)" \
	[ "$(metric $port 'dronepipe_ingress_http_refused_total{reason="request_timeout"}')" -ge 3 ]

probe_check "413: headers announcing 64 KB answered 413 before any body byte, Connection: close, connection closed" \
	early-413 $port 4096 /api/deliveryrequests
probe_check "a chunked body past the limit: the connection is closed before the body is all sent" \
	chunked-over $port 4096 /api/deliveryrequests

code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 -X POST "$base/api/deliveryrequests" \
	-H 'Content-Type: application/json' -d "$body")
check "after all that, a well-behaved client is served (POST -> $code)" [ "$code" = 202 ]
code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 -X POST "$base/api/deliveryrequests" \
	-H 'Content-Type: application/json' -d "{\"pad\":\"$(head -c 3000 /dev/zero | tr '\0' a)\",${body#\{}")
check "a body just under the limit is read and validated as usual (-> $code)" [ "$code" = 202 ]
stop_children

out=$(DP_HTTP_PORT=18383 DP_INGRESS_ACK_TIMEOUT_MS=5000 DP_HTTP_REQUEST_TIMEOUT_MS=4000 \
	"$bin/dronepipe-ingress" 2>&1)
rc=$?
[ "$rc" = 1 ] && [[ "$out" == *"DP_INGRESS_ACK_TIMEOUT_MS (5000) must be below DP_HTTP_REQUEST_TIMEOUT_MS (4000)"* ]]
expect "an ack timeout at or past the request deadline is a configuration error (exit $rc)"

# --- delivery: streams per address -------------------------------------------------------------
dport=18381
feed=$build/tests/it/delivery_feed
id=$(python3 -c 'import uuid; print(uuid.uuid4())')
start_service dronepipe-delivery limits-delivery DP_HTTP_PORT=$dport \
	DP_REDIS_URL="${DP_REDIS_URL:-redis://127.0.0.1:6379}" DP_HTTP_MAX_STREAMS_PER_IP=3 \
	DP_COMMIT_INTERVAL_MS=200 >/dev/null
wait_until 30 curl -sf "http://127.0.0.1:$dport/readyz" || bad "delivery ready"
python3 - "$id" <<'PY' | "$feed" >/dev/null
import json, sys, time, uuid
did = sys.argv[1]
# recent: the delivery service does not apply records older than its retention (7 days)
t0 = int(time.time() * 1000) - 600000
p = {"latitude": 47.61, "longitude": -122.33, "altitude": 0.0}
d = {"latitude": 47.66, "longitude": -122.30, "altitude": 0.0}
for v, st in ((1, "Created"), (2, "Scheduled")):
    print(json.dumps({"schema": "DeliveryLifecycle", "value": {
        "eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, did + "/lc/" + str(v))), "deliveryId": did,
        "stage": st, "version": v, "time": t0 + v * 60000, "causationId": None,
        "requestedAt": t0, "ownerId": "owner-limits", "pickupLocation": "47.61,-122.33",
        "pickup": p, "dropOffLocation": "47.66,-122.30", "dropoff": d, "pickupTime": t0 + 3600000,
        "deadline": "today", "expedited": False, "confirmationRequired": "None",
        "packageId": "pkg-limits", "droneId": None if v < 2 else "drone-3",
        "pickupEta": None if v < 2 else t0 + 1200000, "deliveryEta": None if v < 2 else t0 + 2400000,
        "reason": None}}))
PY
expect "feed: a scheduled delivery produced"
wait_until 30 curl -sf "http://127.0.0.1:$dport/api/deliveries/$id"
expect "the delivery is readable"
probe_check "stream cap: 3 live streams from 127.0.0.1 open, the 4th gets 429, 127.0.0.2 still gets 200" \
	stream-cap $dport 3 "/api/deliveries/$id/events"
check "the refused stream is counted (streams_per_ip)" \
	[ "$(metric $dport 'dronepipe_delivery_http_refused_total{reason="streams_per_ip"}')" -ge 1 ]
stop_children

# --- ingress drain on SIGTERM ------------------------------------------------------------------
# post_many N TAG -> N POSTs at once in the background (their pids in posts[]); each writes
# its status code and body to $logdir/drain-TAG-i.{code,body}
post_many() {
	posts=()
	local i
	for i in $(seq "$1"); do
		curl -s -m 30 -o "$logdir/drain-$2-$i.body" -w '%{http_code}\n' -X POST \
			"http://127.0.0.1:$dp/api/deliveryrequests" -H 'Content-Type: application/json' \
			-d "$body" >"$logdir/drain-$2-$i.code" &
		posts+=($!)
	done
}
in_flight_at_least() { [ "$(metric "$dp" dronepipe_ingress_http_in_flight)" -ge "$1" ]; }
refused() { ! curl -s -m 2 -o /dev/null "http://127.0.0.1:$dp/healthz"; }
codes() { cat "$logdir"/drain-"$1"-*.code | sort | uniq -c | awk '{printf "%s x%s ", $2, $1}'; }

# (a) Kafka acknowledges within the shutdown time: every request in flight gets its 202.
dp=18382
rm -f "$logdir"/drain-a-* "$logdir"/drain-b-*
start_service dronepipe-ingress limits-drain-a DP_HTTP_PORT=$dp DP_KAFKA_PROP_linger_ms=3000 \
	DP_INGRESS_ACK_TIMEOUT_MS=20000 DP_HTTP_REQUEST_TIMEOUT_MS=30000 \
	DP_SHUTDOWN_TIMEOUT_MS=15000 >/dev/null
pid=${children[-1]}
wait_until 30 curl -sf "http://127.0.0.1:$dp/readyz" || bad "ingress (drain a) ready"
post_many 20 a
wait_until 10 in_flight_at_least 21 # the 20 POSTs and the /metrics request asking
expect "20 POSTs in flight, waiting for Kafka (linger.ms 3000)"
kill -TERM "$pid"
wait_until 10 refused
expect "after SIGTERM a new connection is refused"
# (curl writes a POST's status when it ends: no status yet = still waiting for its answer)
check "... already while the requests in flight still wait for their answer" \
	[ -z "$(cat "$logdir"/drain-a-*.code 2>/dev/null)" ]
wait "${posts[@]}"
wait "$pid"
rc=$?
check "the ingress exits 0 after the drain (got $rc)" [ "$rc" = 0 ]
check "every request in flight at SIGTERM answered 202 ($(codes a))" \
	[ "$(cat "$logdir"/drain-a-*.code | grep -c '^202$')" = 20 ]
missing=0
for f in "$logdir"/drain-a-*.body; do
	did=$(json_get "$(cat "$f")" 'd["deliveryId"]' 2>/dev/null)
	rec=$("$bin/dronepipe" tail dronedelivery.requests --from-beginning --key "$did" --limit 1 \
		--timeout-ms 15000 2>/dev/null)
	[ -n "$did" ] && [ -n "$rec" ] || missing=$((missing + 1))
done
check "each of the 20 accepted requests is on dronedelivery.requests ($missing missing)" [ "$missing" = 0 ]
children=()

# (b) The shutdown time runs out before Kafka acknowledges: every request in flight gets 503.
start_service dronepipe-ingress limits-drain-b DP_HTTP_PORT=$dp DP_KAFKA_PROP_linger_ms=4000 \
	DP_INGRESS_ACK_TIMEOUT_MS=20000 DP_HTTP_REQUEST_TIMEOUT_MS=30000 \
	DP_SHUTDOWN_TIMEOUT_MS=300 >/dev/null
pid=${children[-1]}
wait_until 30 curl -sf "http://127.0.0.1:$dp/readyz" || bad "ingress (drain b) ready"
post_many 20 b
wait_until 10 in_flight_at_least 21
expect "20 POSTs in flight, waiting for Kafka (linger.ms 4000)"
kill -TERM "$pid"
wait "${posts[@]}"
wait "$pid"
rc=$?
check "the ingress exits 0 after answering them (got $rc)" [ "$rc" = 0 ]
check "every request in flight at SIGTERM answered 503 ($(codes b))" \
	[ "$(cat "$logdir"/drain-b-*.code | grep -c '^503$')" = 20 ]
grep -q '"detail":"the service is shutting down' "$logdir/drain-b-1.body"
expect "the 503 says the service is shutting down"
check "the drain timeout is logged" grep -q '"event":"drain_timeout"' "$logdir/limits-drain-b.log"
children=()

finish test_http_limits
