#!/usr/bin/env bash
# Validates the deployment files offline: the Dockerfile's rules, the Helm chart (helm lint, helm
# template with each values file), every rendered document against the Kubernetes schemas of a
# pinned version and the vendored CRD schemas (KEDA, Gateway API, Strimzi), the compose file
# against the compose-spec schema, DP_* variables against the binaries' config tables, security
# and scaling rules; then the self-test breaks copies on purpose and expects each break caught.
# Prints one line per check and a closing "deploy: N passed, M failed"; exits 1 on any failure.
# Usage: scripts/validate-deploy.sh [--root DIR] [--no-selftest] [--no-regen]
#   --root DIR     validate DIR/k8s, DIR/compose, DIR/Dockerfile (default: this repository)
#   --no-selftest  skip tests/deploy/selftest.sh       --no-regen  never rewrite known-vars.txt
# Environment: DEPLOY_STRICT_BINARIES=1 fails when a binary is missing from build/bin.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/versions.env"
K8S_VERSION=1.33.0 # Kubernetes schema version the renders are validated against
root=$repo
selftest=1
regen=--regen
while [ $# -gt 0 ]; do
	case $1 in
	--root) root=$(cd "$2" && pwd) && shift ;;
	--no-selftest) selftest=0 ;;
	--no-regen) regen= ;;
	*) echo "usage: $0 [--root DIR] [--no-selftest] [--no-regen]" >&2 && exit 2 ;;
	esac
	shift
done

passed=0
failed=0
ok() { passed=$((passed + 1)) && printf 'ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)) && printf 'FAIL %s\n' "$*"; }
finish() {
	echo "deploy: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

if ! "$here/install-tools.sh" >/tmp/dronepipe-install-tools.$$ 2>&1; then
	cat /tmp/dronepipe-install-tools.$$ >&2
	rm -f /tmp/dronepipe-install-tools.$$
	fail "install-tools"
	finish
fi
rm -f /tmp/dronepipe-install-tools.$$
helm=$repo/.tools/bin/helm
py=$repo/.tools/venv/bin/python
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# --- Dockerfile: multi-stage, Debian 12 slim runtime, non-root, every service binary. ---------
df=$root/Dockerfile
problems=()
if [ ! -f "$df" ]; then
	problems+=("no Dockerfile")
else
	[ "$(grep -ciE '^FROM ' "$df")" -ge 2 ] || problems+=("not multi-stage")
	grep -iE '^FROM ' "$df" | tail -1 | grep -qE 'debian:(12|bookworm)[^ ]*-slim' ||
		problems+=("runtime stage is not Debian 12 slim")
	user=$(awk 'toupper($1)=="USER"{u=$2} END{print u}' "$df")
	case ${user%%:*} in "" | 0 | root) problems+=("last USER is '${user}' (must be non-root)") ;; esac
	for s in ingress workflow package scheduler delivery dronesim; do
		grep -q "dronepipe-$s" "$df" || problems+=("dronepipe-$s not in the image")
	done
	grep -qE '^HEALTHCHECK NONE|^HEALTHCHECK ' "$df" || true
fi
if [ ${#problems[@]} -eq 0 ]; then ok "dockerfile"; else fail "dockerfile"; printf '     - %s\n' "${problems[@]}"; fi

# --- Helm: lint and render each values set. ----------------------------------------------------
chart=$root/k8s/dronepipe
renders=()
for set in default dev prod prod+all; do
	args=()
	case $set in
	dev) args=(-f "$root/k8s/values-dev.yaml") ;;
	prod) args=(-f "$root/k8s/values-prod.yaml") ;;
	prod+all) args=(-f "$root/k8s/values-prod.yaml" -f "$root/tests/deploy/values-all.yaml") ;;
	esac
	if lint=$("$helm" lint --strict --kube-version "$K8S_VERSION" "$chart" "${args[@]}" 2>&1); then
		ok "helm-lint[$set]"
	else
		fail "helm-lint[$set]"
		printf '%s\n' "$lint" | sed 's/^/     /'
	fi
	if err=$("$helm" template dp "$chart" --kube-version "$K8S_VERSION" "${args[@]}" 2>&1 >"$out/$set.yaml"); then
		ok "helm-template[$set]"
		renders+=(--render "$set=$out/$set.yaml")
	else
		fail "helm-template[$set]"
		printf '%s\n' "$err" | sed 's/^/     /'
	fi
done

# --- Schemas, env vars, security, scaling, network policies, compose, topics. -----------------
"$py" "$repo/tests/deploy/check_deploy.py" "${renders[@]}" \
	--compose "$root/compose/docker-compose.yml" \
	--schemas "$repo/tests/deploy/schemas" \
	--known-vars "$repo/tests/deploy/known-vars.txt" \
	--bin-dir "${DEPLOY_BIN_DIR:-$repo/build/bin}" \
	--topics-txt "$repo/scripts/topics.txt" \
	--k8s-version "$K8S_VERSION" $regen >"$out/check.txt" 2>&1
rc=$?
cat "$out/check.txt" | grep -v '^checks: '
passed=$((passed + $(grep -c '^ok ' "$out/check.txt")))
failed=$((failed + $(grep -c '^FAIL ' "$out/check.txt")))
if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$out/check.txt"; then fail "check_deploy.py crashed (exit $rc)"; fi

# --- Self-test: deliberate breaks must be caught. ----------------------------------------------
if [ $selftest -eq 1 ]; then
	if "$repo/tests/deploy/selftest.sh" >"$out/selftest.txt" 2>&1; then
		ok "selftest ($(tail -1 "$out/selftest.txt"))"
	else
		fail "selftest"
		sed 's/^/     /' "$out/selftest.txt"
	fi
fi
finish
