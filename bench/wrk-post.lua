-- wrk script: POST varied valid delivery requests to the ingress (keep-alive).
-- Usage: wrk -t2 -c64 -d30s -s bench/wrk-post.lua http://127.0.0.1:8080
-- Every answer should be 202: wrk counts statuses >= 400 as "non-2xx/3xx" (printed at the end).
local sizes = {"Small", "Medium", "Large"}
local confirmations = {"None", "Picture", "FingerPrint", "Voice"}
local counter = 0

request = function()
	counter = counter + 1
	local body = string.format(
		'{"ownerId":"owner-%d","pickupLocation":"47.%04d,-122.%04d","dropOffLocation":"street %d",' ..
		'"pickupTime":"2026-11-27T10:00:00Z","confirmationRequired":"%s","expedited":%s,' ..
		'"packageInfo":{"packageId":"pkg-%d","size":"%s","weight":%d.5,"tag":"t%d"}}',
		counter % 1000, 5000 + counter % 2500, 2000 + counter % 2500, counter % 977,
		confirmations[counter % 4 + 1], counter % 2 == 0 and "true" or "false",
		counter, sizes[counter % 3 + 1], counter % 20, counter % 7)
	return wrk.format("POST", "/api/deliveryrequests", {["Content-Type"] = "application/json"}, body)
end

done = function(summary, latency, requests)
	io.write(string.format("requests/s: %.0f\n", summary.requests / (summary.duration / 1e6)))
	io.write(string.format("latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		latency:percentile(50) / 1000, latency:percentile(90) / 1000,
		latency:percentile(99) / 1000, latency.max / 1000))
	io.write(string.format("non-2xx/3xx: %d, socket errors: connect %d read %d write %d timeout %d\n",
		summary.errors.status, summary.errors.connect, summary.errors.read,
		summary.errors.write, summary.errors.timeout))
end
