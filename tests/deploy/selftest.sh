#!/usr/bin/env bash
# Self-test of scripts/validate-deploy.sh: copies the deployment files, breaks one thing per copy
# on purpose, and asserts that the validator fails with the expected message. An unbroken copy
# must pass. Breaks run in parallel. Prints one line per case and "selftest: N passed, M failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The self-test checks the validator against the committed fallback tables (known-vars.txt), not
# against whatever binaries are built right now: those are checked by the main run.
export DEPLOY_BIN_DIR=$work/no-binaries

# name | file (relative to the root) | text to find (first occurrence) | replacement | expected
# output (grep -E). A "|" inside a field is written "\x7c"; "\n" is a newline.
CASES=$(
	cat <<'EOF'
readonly-root|k8s/dronepipe/templates/deployment.yaml|            readOnlyRootFilesystem: true\n||FAIL k8s-security\[default\]|readOnlyRootFilesystem must be true
unknown-var|k8s/values-dev.yaml|  DP_LOG_LEVEL: debug|  DP_LOG_LEVEL: debug\n  DP_BOGUS_SETTING: "1"|DP_BOGUS_SETTING is not in
unknown-var-compose|compose/docker-compose.yml|      DP_FLEET_SIZE: "20"|      DP_FLEET_SIZE: "20"\n      DP_FLEET_SIZ: "20"|compose scheduler: DP_FLEET_SIZ is not in
compose-port-probe|compose/docker-compose.yml|      DP_HTTP_PORT: "8080"|      DP_HTTP_PORT: "8090"|healthcheck must probe /readyz on DP_HTTP_PORT 8090
secret-literal|k8s/values-prod.yaml|      DP_FLEET_SIZE: "500"|      DP_FLEET_SIZE: "500"\n      DP_MONGO_URI: mongodb://app:hunter2@db/x|secret DP_MONGO_URI set as a literal
schema-typo|k8s/dronepipe/templates/deployment.yaml|          readinessProbe:|          readinesProbe:|FAIL k8s-schema\[default\]
readiness-path|k8s/dronepipe/templates/deployment.yaml|httpGet: {path: /readyz, port: http}|httpGet: {path: /healthz, port: http}|readinessProbe must GET /readyz
crd-schema|k8s/dronepipe/templates/kafkatopics.yaml|  partitions: {{ $root.Values.partitions }}|  partitions: "{{ $root.Values.partitions }}"|FAIL k8s-schema\[dev\]
keda-over-partitions|k8s/dronepipe/templates/scaledobject.yaml|  maxReplicaCount: {{ include "dronepipe.maxReplicas" (dict "root" $root "svc" $svc) }}|  maxReplicaCount: 100|maxReplicaCount 100 > 6 partitions
netpol-mongodb|k8s/dronepipe/templates/networkpolicy.yaml|list "mongodb" "redis"|list "redis"|no egress allowed to port 27017
quota-no-surge|k8s/values-prod.yaml|partitions: 12|partitions: 12\nquota: {extraPods: -10}|ResourceQuota/dronepipe: pods=
compose-schema|compose/docker-compose.yml|  stop_grace_period: 30s|  stop_grace_periods: 30s|FAIL compose-schema
compose-readonly|compose/docker-compose.yml|  read_only: true\n||ingress: read_only must be true
compose-port-public|compose/docker-compose.yml|      - "127.0.0.1:8084:8084"|      - "8084:8084"|workflow: port '8084:8084' is published on every interface
compose-port-default|compose/docker-compose.yml|DRONEPIPE_PUBLISH_ADDR:-127.0.0.1}:8080|DRONEPIPE_PUBLISH_ADDR:-0.0.0.0}:8080|ingress: port '0.0.0.0:8080:8080' is published on 0.0.0.0
compose-topics|compose/docker-compose.yml|        dronedelivery.drone.telemetry\n||FAIL topics
dockerfile-root|Dockerfile|USER 10001:10001|USER root|last USER is 'root'
auth-off|k8s/dronepipe/values.yaml|auth:\n  enabled: true|auth:\n  enabled: false|auth is off \(no DP_AUTH_API_KEYS_FILE
auth-track-secret|k8s/dronepipe/templates/_helpers.tpl|{{- if and $svc.tracking $auth.trackTokenSecret.name -}}|{{- if and $svc.tracking $auth.trackTokenSecret.name (ne $name "delivery") -}}|must mount the same tracking-token secret
EOF
)

copy_tree() {
	mkdir -p "$1/tests"
	cp -r "$repo/k8s" "$repo/compose" "$1/"
	cp "$repo/Dockerfile" "$1/" 2>/dev/null || true
	cp -r "$repo/tests/deploy" "$1/tests/"
}

run_case() { # line
	local name file find repl expect dir
	IFS='|' read -r name file find repl expect <<<"$1"
	dir=$work/$name
	copy_tree "$dir"
	if ! python3 "$here/break.py" "$dir/$file" "$find" "$repl"; then
		echo "FAIL $name: the break no longer applies (update tests/deploy/selftest.sh)"
		return
	fi
	if "$repo/scripts/validate-deploy.sh" --root "$dir" --no-selftest --no-regen >"$dir.out" 2>&1; then
		echo "FAIL $name: validator passed a broken $file"
	elif grep -qE "$expect" "$dir.out"; then
		echo "ok   $name: caught ($(grep -E "$expect" "$dir.out" | head -1 | sed 's/^ *//' | cut -c1-120))"
	else
		echo "FAIL $name: validator failed, but without /$expect/:"
		grep -E '^(FAIL|     -)' "$dir.out" | head -8 | sed 's/^/       /'
	fi
}

# One case per process (xargs -P runs them in parallel): selftest.sh --case WORKDIR LINE
if [ "${1:-}" = --case ]; then
	rmdir "$work" && trap - EXIT
	work=$2
	export DEPLOY_BIN_DIR=$work/no-binaries
	run_case "$3"
	exit 0
fi

# Baseline: the unbroken copy must pass (else every "caught" below proves nothing).
copy_tree "$work/baseline"
if "$repo/scripts/validate-deploy.sh" --root "$work/baseline" --no-selftest --no-regen >"$work/baseline.out" 2>&1; then
	results="ok   baseline: an unbroken copy passes"
else
	results="FAIL baseline: the unbroken copy fails:
$(grep -E '^(FAIL|     -)' "$work/baseline.out" | head -10)"
fi
results="$results
$(printf '%s\n' "$CASES" | xargs -d '\n' -P "$(nproc)" -I{} "$0" --case "$work" {})"
printf '%s\n' "$results"
p=$(printf '%s\n' "$results" | grep -c '^ok ')
f=$(printf '%s\n' "$results" | grep -c '^FAIL ')
echo "selftest: $p passed, $f failed"
[ "$f" -eq 0 ]
