#!/usr/bin/env bash
# make demo: with `make up` running, posts one delivery and prints its status each time it
# changes, until it is Completed (the embedded stack's simulator runs at 60x, see
# DP_STACK_SIM_TIME_SCALE), then the tracking page URL.
set -euo pipefail
ingress=${DP_DEMO_INGRESS:-http://127.0.0.1:8080}
delivery=${DP_DEMO_DELIVERY:-http://127.0.0.1:8081}
for url in "$ingress" "$delivery"; do
	if ! curl -sf "$url/readyz" >/dev/null; then
		echo "demo: $url is not ready: start the pipeline with 'make up' first" >&2
		exit 1
	fi
done
body='{"ownerId":"demo-owner","pickupLocation":"47.6097,-122.3331","dropOffLocation":"47.6205,-122.3493",
"pickupTime":"2026-11-27T10:00:00Z","confirmationRequired":"None",
"packageInfo":{"packageId":"demo-'$RANDOM$RANDOM'","size":"Small","weight":1.2,"tag":"demo"}}'
answer=$(curl -s -X POST "$ingress/api/deliveryrequests" -H 'Content-Type: application/json' -d "$body")
id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["deliveryId"])' "$answer") || {
	echo "demo: the ingress did not accept the request: $answer" >&2
	exit 1
}
echo "delivery $id posted"
echo "tracking page: $delivery/track/$id"
last=""
deadline=$((SECONDS + ${DP_DEMO_TIMEOUT_S:-180}))
while [ $SECONDS -lt $deadline ]; do
	status=$(curl -s "$delivery/api/deliveries/$id/status" || true)
	line=$(python3 -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
except ValueError:
    sys.exit(0)
if "stageName" not in d:
    sys.exit(0)
loc = d.get("lastKnownLocation") or {}
print("%-16s drone at %s  pickupETA %s  deliveryETA %s" % (d["stageName"],
      "%.5f,%.5f" % (loc["latitude"], loc["longitude"]) if loc else "-",
      d.get("pickupETA") or "-", d.get("deliveryETA") or "-"))' "$status")
	if [ -n "$line" ] && [ "$line" != "$last" ]; then
		echo "$(date -u +%H:%M:%S) $line"
		last=$line
	fi
	case $line in Completed* | Cancelled* | Failed*) break ;; esac
	sleep 0.5
done
case $last in
Completed*) echo "delivered. history: curl $delivery/api/deliveries/$id/history" ;;
*)
	echo "demo: delivery $id did not complete within the time limit (last: ${last:-no status})" >&2
	exit 1
	;;
esac
