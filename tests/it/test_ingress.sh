#!/usr/bin/env bash
# Integration test of dronepipe-ingress against the real broker (scripts/test-it.sh provides it):
# every route's answer and the event it put on dronedelivery.requests, read back and decoded;
# bad input; idempotency; API keys; TLS; broker down -> 503 then recovery.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
trap stop_children EXIT

port=18180
base=http://127.0.0.1:$port
start_service dronepipe-ingress ingress DP_HTTP_PORT=$port DP_INGRESS_ACK_TIMEOUT_MS=3000 >/dev/null
wait_until 30 curl -sf "$base/readyz" || bad "ingress ready"

body='{"ownerId":"owner-ü-1","pickupLocation":"47.61,-122.33","dropOffLocation":"Pike Place Market",
"pickupTime":"2026-11-27T10:00:00+01:00","deadline":"tomorrow","expedited":true,
"confirmationRequired":"Picture","deliveryId":"client-chosen-is-ignored",
"packageInfo":{"packageId":"pkg-it-1","size":"Medium","weight":2.5,"tag":"fragile"},"unknown":1}'
trace=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01

# tail_key KEY N -> the first N records with KEY on the requests topic, decoded, one per line
tail_key() {
	"$bin/dronepipe" tail dronedelivery.requests --from-beginning --key "$1" --limit "$2" --timeout-ms 15000
}

# --- POST: 202 after the broker's ack, the event on the topic equals the request ---
resp=$(curl -s -D "$logdir/h1" -X POST "$base/api/deliveryrequests" -H 'Content-Type: application/json' \
	-H "traceparent: $trace" -H 'X-Request-Id: it-request-1' -d "$body")
code=$(awk 'NR==1{print $2}' "$logdir/h1")
check "POST valid -> 202 (got $code)" [ "$code" = 202 ]
id=$(json_get "$resp" 'd["deliveryId"]' 2>/dev/null)
[[ "$id" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]
expect "response carries a new UUID deliveryId ($id)"
check "Location is /api/deliveries/<id>" grep -qi "^Location: /api/deliveries/$id" "$logdir/h1"
check "X-Request-Id is echoed" grep -qi '^X-Request-Id: it-request-1' "$logdir/h1"
check "response echoes the request" [ "$(json_get "$resp" 'd["ownerId"]+"|"+d["packageInfo"]["size"]+"|"+d["pickupTime"]')" = "owner-ü-1|Medium|2026-11-27T09:00:00.000Z" ]
rec=$(tail_key "$id" 1)
check "event read back from dronedelivery.requests" [ -n "$rec" ]
check "event is DeliveryRequested with the request's fields" python3 - "$rec" "$id" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); v = r["value"]; h = r["headers"]
assert r["type"] == "dronepipe.requests.DeliveryRequested", r["type"]
assert v["deliveryId"] == sys.argv[2] and r["key"] == sys.argv[2]
assert v["ownerId"] == "owner-ü-1" and v["pickupLocation"] == "47.61,-122.33"
assert v["pickup"]["latitude"] == 47.61 and v["pickup"]["longitude"] == -122.33
assert v["dropOffLocation"] == "Pike Place Market"
assert 47.5 <= v["dropoff"]["latitude"] <= 47.75 and -122.45 <= v["dropoff"]["longitude"] <= -122.2
assert v["pickupTime"] == 1795770000000, v["pickupTime"]
assert v["deadline"] == "tomorrow" and v["expedited"] is True
assert v["confirmationRequired"] == "Picture"
assert v["packageInfo"] == {"packageId": "pkg-it-1", "size": "Medium", "weight": 2.5, "tag": "fragile"}
assert v["idempotencyKey"] is None
assert h["event_type"] == "DeliveryRequested" and h["event_id"] == v["eventId"]
assert h["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-"), h["traceparent"]
assert h["traceparent"] != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
assert int(h["produced_at"]) > 1700000000000
PY

# --- PATCH, DELETE, confirmation: same topic, same key, in order ---
resp=$(curl -s -w '\n%{http_code}' -X PATCH "$base/api/deliveryrequests/$id" -H 'Content-Type: application/json' \
	-d '{"dropOffLocation":"47.70,-122.30","pickupTime":1764237600000}')
check "PATCH -> 200 with the id as a JSON string" [ "$resp" = "\"$id\""$'\n'200 ]
check "DELETE -> 204" [ "$(http_code -X DELETE "$base/api/deliveryrequests/$id")" = 204 ]
check "confirmation -> 202" [ "$(http_code -X POST "$base/api/deliveryrequests/$id/confirmations" -H 'Content-Type: application/json' \
	-d '{"dateTime":"2026-11-27T11:00:00Z","geoCoordinates":{"latitude":47.7,"longitude":-122.3,"altitude":10},"confirmationType":"Picture","confirmationBlob":"aGVsbG8="}')" = 202 ]
recs=$(tail_key "$id" 4)
check "the 4 events of the delivery are on the topic in order, with their values" python3 - "$recs" <<'PY'
import json, sys
rs = [json.loads(l) for l in sys.argv[1].splitlines()]
assert [r["headers"]["event_type"] for r in rs] == ["DeliveryRequested", "DeliveryRescheduleRequested",
    "DeliveryCancelRequested", "DeliveryConfirmed"], [r["headers"]["event_type"] for r in rs]
assert len({r["partition"] for r in rs}) == 1
p = rs[1]["value"]
assert p["dropOffLocation"] == "47.70,-122.30" and p["dropoff"]["latitude"] == 47.7
assert p["pickupTime"] == 1764237600000 and p["pickupLocation"] is None and p["pickup"] is None
c = rs[3]["value"]
assert c["confirmationType"] == "Picture" and c["dateTime"] == 1795777200000
assert c["geoCoordinates"] == {"latitude": 47.7, "longitude": -122.3, "altitude": 10.0}
PY

# --- idempotency: same key -> same deliveryId ---
a=$(curl -s -X POST "$base/api/deliveryrequests" -H 'Content-Type: application/json' -H 'Idempotency-Key: k-42' -d "$body")
b=$(curl -s -X POST "$base/api/deliveryrequests" -H 'Content-Type: application/json' -H 'Idempotency-Key: k-42' -d "$body")
c=$(curl -s -X POST "$base/api/deliveryrequests" -H 'Content-Type: application/json' -H 'Idempotency-Key: k-43' -d "$body")
ida=$(json_get "$a" 'd["deliveryId"]')
check "same Idempotency-Key twice -> same deliveryId" [ -n "$ida" ] && [ "$ida" = "$(json_get "$b" 'd["deliveryId"]')" ]
check "another Idempotency-Key -> another deliveryId" [ "$ida" != "$(json_get "$c" 'd["deliveryId"]')" ]
# an Idempotency-Key that is not text (each class): 400 naming the header, never a 5xx
long_key=$(printf 'k%.0s' $(seq 256))
for key in $'\xff\xfe' $'k-\xe2\x82' "$long_key" $'k\x7f' $'\xed\xa0\x80'; do
	code=$(curl -s -o "$logdir/idem" -w '%{http_code}' -X POST "$base/api/deliveryrequests" \
		-H 'Content-Type: application/json' -H "Idempotency-Key: $key" -d "$body")
	check "Idempotency-Key of ${#key} bytes that is not text -> 400 naming it (got $code)" \
		[ "$code" = 400 ] && grep -q 'Idempotency-Key' "$logdir/idem"
done
dup=$(tail_key "$ida" 2)
check "a retried POST is the same event (same eventId)" python3 -c '
import json,sys; rs=[json.loads(l) for l in sys.argv[1].splitlines()]
assert len(rs)==2 and rs[0]["value"]["eventId"]==rs[1]["value"]["eventId"] and rs[0]["value"]["idempotencyKey"]=="k-42"' "$dup"

# --- bad input: status and a body naming the problem ---
problem() { # METHOD PATH CT BODY -> prints "code|body"
	curl -s -w '|%{http_code}' -X "$1" "$base$2" ${3:+-H "Content-Type: $3"} --data-binary "$4"
}
r=$(problem POST /api/deliveryrequests application/json '{"pickupLocation":"x","packageInfo":{"size":"Huge","weight":-1}}')
check "missing/invalid fields -> 400 listing each field" python3 - "$r" <<'PY'
import json, sys
body, code = sys.argv[1].rsplit("|", 1)
assert code == "400", code
d = json.loads(body)
assert d["status"] == 400 and d["title"] and d["detail"]
fields = {e["field"]: e["reason"] for e in d["errors"]}
for f in ["ownerId", "dropOffLocation", "pickupTime", "confirmationRequired", "packageInfo.packageId", "packageInfo.size", "packageInfo.weight"]:
    assert f in fields, (f, fields)
assert "Small, Medium, Large" in fields["packageInfo.size"], fields["packageInfo.size"]
PY
ct=$(curl -s -o /dev/null -w '%{content_type}' -X POST "$base/api/deliveryrequests" -H 'Content-Type: application/json' -d '{}')
check "errors are application/problem+json" [ "$ct" = application/problem+json ]
r=$(problem POST /api/deliveryrequests application/json '{"ownerId": ')
[[ "$r" == *"|400" && "$r" == *JSON* ]]
expect "malformed JSON -> 400 naming it"
r=$(problem POST /api/deliveryrequests text/plain 'hello')
[[ "$r" == *"|415" && "$r" == *Content-Type* ]]
expect "non-JSON Content-Type -> 415"
big=$(python3 -c 'print("{\"ownerId\":\"" + "x"*70000 + "\"}")')
r=$(problem POST /api/deliveryrequests application/json "$big")
[[ "$r" == *"|413" ]]
expect "body over 64 KiB -> 413"
# a connection holds 8 KB (pipeline/http.c CONNECTION_MEMORY): a body of 50 KB still streams
# through it, headers over it are refused
big_tag=$(python3 -c 'import json; print(json.dumps({"ownerId": "o", "pickupLocation": "47.5,-122.3", "dropOffLocation": "47.6,-122.2", "pickupTime": "2030-01-01T10:00:00Z", "confirmationRequired": "None", "packageInfo": {"packageId": "p", "size": "Small", "weight": 1.5, "tag": "t" * 50000}}))')
r=$(problem POST /api/deliveryrequests application/json "$big_tag")
[[ "$r" == *"|400" && "$r" == *"packageInfo.tag"* && "$r" == *"got 50000"* ]]
expect "a 50 KB body is read whole (a tag of 50,000 characters named) -> 400"
pad=$(python3 -c 'print("y" * 9000)')
check "headers over 8 KB -> 431" [ "$(http_code -X POST -H "X-Pad: $pad" "$base/api/deliveryrequests")" = 431 ]
deep=$(python3 -c 'print("{\"a\":" + "["*40 + "]"*40 + "}")')
r=$(problem POST /api/deliveryrequests application/json "$deep")
[[ "$r" == *"|400" && "$r" == *deeper* ]]
expect "nesting deeper than 32 -> 400"
check "unknown route -> 404" [ "$(http_code "$base/api/nothing")" = 404 ]
check "wrong method -> 405" [ "$(http_code -X GET "$base/api/deliveryrequests")" = 405 ]
check "405 names the allowed methods" bash -c "curl -s -D - -o /dev/null -X PUT '$base/api/deliveryrequests/$id' | grep -qi '^Allow: .*PATCH.*DELETE'"
r=$(problem PATCH /api/deliveryrequests/not-a-uuid application/json '{"deadline":"x"}')
[[ "$r" == *"|400" && "$r" == *deliveryId* ]]
expect "PATCH with a non-UUID id -> 400 naming deliveryId"
r=$(problem PATCH "/api/deliveryrequests/$id" application/json '{}')
[[ "$r" == *"|400" ]]
expect "PATCH with nothing to change -> 400"

# --- probes and metrics ---
check "/api/probe -> 200" [ "$(http_code "$base/api/probe")" = 200 ]
check "/actuator/health -> UP" [ "$(curl -s "$base/actuator/health")" = '{"status":"UP"}' ]
check "/healthz -> 200" [ "$(http_code "$base/healthz")" = 200 ]
metrics=$(curl -s "$base/metrics")
check "metrics count requests by route and status" grep -q 'dronepipe_ingress_http_requests_total{route="/api/deliveryrequests",status="202"}' <<<"$metrics"
check "metrics have the produce latency histogram" grep -q 'dronepipe_ingress_produce_seconds_count' <<<"$metrics"

# --- service area and drone range (DP_SERVICE_AREA, DP_DRONE_RANGE_M) ---
# area_problem CODE_BODY FIELD WORDS... -> the answer is 400, a problem naming exactly FIELD, with
# a reason holding every WORD
area_problem() {
	python3 - "$@" <<'PY'
import json, sys
answer, field, words = sys.argv[1], sys.argv[2], sys.argv[3:]
body, code = answer.rsplit("|", 1)
assert code == "400", (code, body)
d = json.loads(body)
assert d["status"] == 400 and field in d["detail"], d
errs = {e["field"]: e["reason"] for e in d["errors"]}
assert list(errs) == [field], errs
for w in words:
    assert w in errs[field], (w, errs[field])
PY
}
# create_at PICKUP DROPOFF [BASE] -> POST a delivery between two locations; prints "body|code"
create_at() {
	local b
	b=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["pickupLocation"]=sys.argv[2]; d["dropOffLocation"]=sys.argv[3]; print(json.dumps(d))' "$body" "$1" "$2")
	curl -s -w '|%{http_code}' -X POST "${3:-$base}/api/deliveryrequests" -H 'Content-Type: application/json' --data-binary "$b"
}
# the default area: 25 km around 47.61,-122.33, range 70 km
r=$(create_at "48.61,-122.33" "47.62,-122.33")
check "area: pickup 111 km away -> 400 naming pickupLocation and the 25000 m radius" \
	area_problem "$r" pickupLocation "outside the service area" "radius of 25000 m (DP_SERVICE_AREA)"
r=$(create_at "47.62,-122.33" "-33.86,151.21")
check "area: drop-off on another continent -> 400 naming dropOffLocation" \
	area_problem "$r" dropOffLocation "outside the service area" "25000 m"
r=$(create_at "90,0" "0,180")
check "area: the pole and the antimeridian are outside too -> 400 naming both" python3 -c '
import json,sys; b,c=sys.argv[1].rsplit("|",1); assert c=="400"
assert sorted(e["field"] for e in json.loads(b)["errors"]) == ["dropOffLocation","pickupLocation"]' "$r"
r=$(create_at "47.61,-122.33" "Pike Place Market")
check "area: a good request (coordinates to a place name) is still 202" [ "${r##*|}" = 202 ]
# a small area (8 km) and range (10 km): free text can land outside, a route can be too long
sport=18183
sbase=http://127.0.0.1:$sport
start_service dronepipe-ingress ingress-area DP_HTTP_PORT=$sport DP_SERVICE_AREA=47.61,-122.33,8000 \
	DP_DRONE_RANGE_M=10000 >/dev/null
wait_until 30 curl -sf "$sbase/readyz" || bad "ingress with a small area ready"
r=$(create_at "47.68,-122.33" "47.54,-122.33" "$sbase")
check "area: both ends inside, 15.6 km apart -> 400 naming the route and the 10000 m range" \
	area_problem "$r" route "from pickup to drop-off is 1556" "drone range of 10000 m (DP_DRONE_RANGE_M)"
r=$(create_at "47.64,-122.33" "47.58,-122.33" "$sbase")
check "area: a good request inside the small area is still 202" [ "${r##*|}" = 202 ]
# place names map to stable points over a 25 x 28 km box: some inside the 8 km circle, most not
inside=0 outside=0 wrong=0
for i in $(seq 0 29); do
	r=$(create_at "47.61,-122.33" "place $i" "$sbase")
	case "${r##*|}" in
	202) inside=$((inside + 1)) place_in="place $i" ;;
	400) if area_problem "$r" dropOffLocation "outside the service area" "8000 m"; then
		outside=$((outside + 1)) place_out="place $i"
	else wrong=$((wrong + 1)); fi ;;
	*) wrong=$((wrong + 1)) ;;
	esac
done
check "area: free-text drop-offs inside -> 202, outside -> 400 naming dropOffLocation ($inside in, $outside out)" \
	[ "$inside" -gt 0 ] && [ "$outside" -gt 0 ] && [ "$wrong" = 0 ]
rid=$(json_get "$(create_at "47.64,-122.33" "47.58,-122.33" "$sbase" | sed 's/|[0-9]*$//')" 'd["deliveryId"]')
r=$(curl -s -w '|%{http_code}' -X PATCH "$sbase/api/deliveryrequests/$rid" -H 'Content-Type: application/json' -d '{"pickupLocation":"48.61,-122.33"}')
check "area: reschedule to a pickup outside -> 400 naming pickupLocation" area_problem "$r" pickupLocation "8000 m"
r=$(curl -s -w '|%{http_code}' -X PATCH "$sbase/api/deliveryrequests/$rid" -H 'Content-Type: application/json' -d "{\"dropOffLocation\":\"${place_out:-}\"}")
check "area: reschedule to a place name outside ('${place_out:-}') -> 400 naming dropOffLocation" area_problem "$r" dropOffLocation "8000 m"
r=$(curl -s -w '|%{http_code}' -X PATCH "$sbase/api/deliveryrequests/$rid" -H 'Content-Type: application/json' -d "{\"dropOffLocation\":\"${place_in:-}\"}")
check "area: reschedule to a place name inside ('${place_in:-}') -> 200" [ "${r##*|}" = 200 ]
r=$(curl -s -w '|%{http_code}' -X PATCH "$sbase/api/deliveryrequests/$rid" -H 'Content-Type: application/json' -d '{"pickupLocation":"47.68,-122.33","dropOffLocation":"47.54,-122.33"}')
check "area: reschedule of both ends too far apart -> 400 naming the route" area_problem "$r" route "10000 m"
r=$(curl -s -w '|%{http_code}' -X PATCH "$sbase/api/deliveryrequests/$rid" -H 'Content-Type: application/json' -d '{"dropOffLocation":"47.60,-122.32"}')
check "area: reschedule inside -> 200" [ "${r##*|}" = 200 ]
# a bad setting stops the start with exit 1 naming it
for setting in "DP_SERVICE_AREA=Seattle" "DP_SERVICE_AREA=47.61,-122.33" "DP_SERVICE_AREA=47.61,-122.33,-1" \
	"DP_SERVICE_AREA=91,0,1000" "DP_SERVICE_AREA=1,2,nan" "DP_DRONE_RANGE_M=0"; do
	out=$(env DP_HTTP_PORT=0 "$setting" timeout 20 "$bin/dronepipe-ingress" 2>&1)
	rc=$?
	check "area: $setting -> exit 1 naming ${setting%%=*} (rc $rc)" [ "$rc" = 1 ] && grep -q "${setting%%=*}" <<<"$out"
done

# --- API keys ---
keys=$logdir/api-keys.txt
# body's ownerId is owner-ü-1 (UTF-8): the second key is that owner's (stored as its SHA-256)
printf '# test keys\nsecret-key-1-0123456789 owner:someone-else\nsha256:%s owner:owner-ü-1\n' \
	"$(printf %s secret-key-2-0123456789 | sha256sum | cut -d' ' -f1)" >"$keys"
kport=18181
start_service dronepipe-ingress ingress-keys DP_HTTP_PORT=$kport DP_AUTH_API_KEYS_FILE="$keys" >/dev/null
wait_until 30 curl -sf "http://127.0.0.1:$kport/readyz" || bad "ingress with keys ready"
check "API key mode: no key -> 401" [ "$(http_code -X POST "http://127.0.0.1:$kport/api/deliveryrequests" -H 'Content-Type: application/json' -d "$body")" = 401 ]
check "API key mode: wrong key -> 401" [ "$(http_code -X POST "http://127.0.0.1:$kport/api/deliveryrequests" -H 'Authorization: Bearer nope' -H 'Content-Type: application/json' -d "$body")" = 401 ]
check "API key mode: valid key -> 202" [ "$(http_code -X POST "http://127.0.0.1:$kport/api/deliveryrequests" -H 'Authorization: Bearer secret-key-2-0123456789' -H 'Content-Type: application/json' -d "$body")" = 202 ]
check "API key mode: another owner's key -> 403" [ "$(http_code -X POST "http://127.0.0.1:$kport/api/deliveryrequests" -H 'Authorization: Bearer secret-key-1-0123456789' -H 'Content-Type: application/json' -d "$body")" = 403 ]
check "API key mode: health routes stay open" [ "$(http_code "http://127.0.0.1:$kport/healthz")" = 200 ]

# --- TLS ---
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$logdir/tls.key" -out "$logdir/tls.crt" -days 2 \
	-subj /CN=127.0.0.1 >/dev/null 2>&1
tport=18182
start_service dronepipe-ingress ingress-tls DP_HTTP_PORT=$tport DP_TLS_CERT_FILE="$logdir/tls.crt" DP_TLS_KEY_FILE="$logdir/tls.key" >/dev/null
wait_until 30 curl -sfk "https://127.0.0.1:$tport/readyz" || bad "ingress with TLS ready"
check "TLS: POST over HTTPS -> 202" [ "$(http_code --cacert "$logdir/tls.crt" -X POST "https://127.0.0.1:$tport/api/deliveryrequests" -H 'Content-Type: application/json' -d "$body")" = 202 ]
check "TLS: plain HTTP is refused" [ "$(http_code "http://127.0.0.1:$tport/healthz")" != 200 ]

# --- broker down: 503 with Retry-After within the ack timeout; works again after restart ---
if [ -n "${DP_TEST_STACK_DIR:-}" ]; then
	( . "$root/scripts/lib-stack.sh" && stop_component kafka 60 ) >/dev/null
	t0=$(date +%s%N)
	hdrs=$(curl -s -D - -o /dev/null --max-time 20 -X POST "$base/api/deliveryrequests" -H 'Content-Type: application/json' -d "$body")
	ms=$((($(date +%s%N) - t0) / 1000000))
	check "broker down: 503 (took ${ms} ms, ack timeout 3000 ms)" grep -q '^HTTP/1.1 503' <<<"$hdrs"
	check "broker down: Retry-After is sent" grep -qi '^Retry-After: [0-9]' <<<"$hdrs"
	check "broker down: answered within the ack timeout (3000 ms + 500 ms slack)" [ "$ms" -lt 3500 ]
	"$root/scripts/stack.sh" infra-up >/dev/null 2>&1 || bad "kafka restarted"
	wait_until 60 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -X POST '$base/api/deliveryrequests' -H 'Content-Type: application/json' -d '$body')\" = 202 ]"
	check "after the broker restarts, POST -> 202 again" [ $? -eq 0 ]
else
	echo "skip - broker-down case needs the isolated stack of scripts/test-it.sh"
fi

finish test_ingress
