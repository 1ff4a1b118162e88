#!/usr/bin/env bash
# Installs the offline deployment-validation tools into the git-ignored .tools/ folder.
# Idempotent: each step checks a stamp (tool version + pins) and does nothing when it matches.
#   helm (HELM_VERSION from scripts/versions.env), built from the Go module proxy -> .tools/bin/helm
#   Python venv with the pinned validators (tests/deploy/requirements.txt)    -> .tools/venv
# `schemas` (not part of the default run) refreshes the vendored schemas in tests/deploy/schemas/
# from registry packages (Go module proxy, Maven Central); their pins are below.
# Usage: scripts/install-tools.sh [helm|venv|schemas|all]   (default: helm and venv)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/versions.env"
tools="$root/.tools"
reqs="$root/tests/deploy/requirements.txt"
schemas="$root/tests/deploy/schemas"

# Pins of the vendored schemas (refreshed by `install-tools.sh schemas` only).
COMPOSE_GO_VERSION=v2.16.2 # github.com/compose-spec/compose-go/v2: schema/compose-spec.json
KEDA_VERSION=v2.21.0       # github.com/kedacore/keda/v2: config/crd/bases/keda.sh_scaledobjects.yaml
GATEWAY_API_VERSION=v1.3.0 # sigs.k8s.io/gateway-api: config/crd/standard/..._httproutes.yaml
STRIMZI_VERSION=0.45.0     # io.strimzi:api + io.strimzi:crd-generator (Maven Central): KafkaTopic CRD
# Minor of the k8s.io/client-go that HELM_VERSION links (v3.18.x: v0.33).
HELM_K8S_MINOR=33

log() { printf '[tools] %s\n' "$*" >&2; }

install_helm() {
	local bin="$tools/bin/helm" stamp="$tools/bin/.helm-version"
	if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$HELM_VERSION k8s1.$HELM_K8S_MINOR" ]; then
		log "helm $HELM_VERSION: present"
		return
	fi
	command -v go >/dev/null || { log "go not found (needed to build helm)"; exit 1; }
	log "helm $HELM_VERSION: building from the Go module proxy"
	mkdir -p "$tools/bin"
	# helm's own Makefile stamps its version and the default Kubernetes version (from the
	# client-go it links, v0.33 -> 1.33) with ldflags; do the same so `helm version` and the
	# default .Capabilities.KubeVersion match an official build.
	local k8s="-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
	k8s="$k8s -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR"
	k8s="$k8s -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
	k8s="$k8s -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR"
	GOBIN="$tools/bin" CGO_ENABLED=0 go install \
		-ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION $k8s" \
		"helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
	echo "$HELM_VERSION k8s1.$HELM_K8S_MINOR" >"$stamp"
}

install_venv() {
	local venv="$tools/venv" stamp="$tools/venv/.requirements"
	if [ -x "$venv/bin/python" ] && cmp -s "$reqs" "$stamp"; then
		log "venv: present"
		return
	fi
	log "venv: creating with $(basename "$reqs")"
	rm -rf "$venv"
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$reqs"
	cp "$reqs" "$stamp"
}

# Copies one file out of a Go module fetched with the go command (the module proxy's own client).
mod_file() { # module version path-in-module dest
	local dir
	dir=$(cd "$tools" && GOFLAGS=-mod=mod go mod download -json "$1@$2" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
	[ -n "$dir" ] && [ -f "$dir/$3" ] || { log "$1@$2: $3 not found"; exit 1; }
	{
		printf '# Vendored from Go module %s@%s, file %s.\n' "$1" "$2" "$3"
		printf '# Refresh: scripts/install-tools.sh schemas\n'
		cat "$dir/$3"
	} >"$4"
}

install_schemas() {
	mkdir -p "$schemas" "$tools/strimzi"
	log "schemas: compose-spec $COMPOSE_GO_VERSION, KEDA $KEDA_VERSION, Gateway API $GATEWAY_API_VERSION, Strimzi $STRIMZI_VERSION"
	local dir
	dir=$(cd "$tools" && go mod download -json "github.com/compose-spec/compose-go/v2@$COMPOSE_GO_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
	install -m 644 "$dir/schema/compose-spec.json" "$schemas/compose-spec.json"
	echo "github.com/compose-spec/compose-go/v2@$COMPOSE_GO_VERSION schema/compose-spec.json" >"$schemas/compose-spec.json.source"
	mod_file github.com/kedacore/keda/v2 "$KEDA_VERSION" config/crd/bases/keda.sh_scaledobjects.yaml \
		"$schemas/crd-keda-scaledobjects.yaml"
	mod_file github.com/kedacore/keda/v2 "$KEDA_VERSION" config/crd/bases/keda.sh_triggerauthentications.yaml \
		"$schemas/crd-keda-triggerauthentications.yaml"
	mod_file sigs.k8s.io/gateway-api "$GATEWAY_API_VERSION" \
		config/crd/standard/gateway.networking.k8s.io_httproutes.yaml "$schemas/crd-gateway-httproutes.yaml"
	# Strimzi publishes its CRDs only on GitHub; Maven Central has the API classes and the
	# generator Strimzi's own build uses, so generate the KafkaTopic CRD from them.
	local s="$tools/strimzi"
	cat >"$s/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dronepipe</groupId><artifactId>strimzi-crd</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>io.strimzi</groupId><artifactId>api</artifactId><version>$STRIMZI_VERSION</version></dependency>
    <dependency><groupId>io.strimzi</groupId><artifactId>crd-generator</artifactId><version>$STRIMZI_VERSION</version></dependency>
  </dependencies>
</project>
POM
	(cd "$s" && rm -rf lib && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime)
	java -cp "$s/lib/*" io.strimzi.crdgenerator.CrdGenerator --yaml \
		"io.strimzi.api.kafka.model.topic.KafkaTopic=$s/kafkatopic.yaml" 2>/dev/null
	{
		printf '# Generated from Maven Central io.strimzi:api:%s with io.strimzi:crd-generator:%s\n' \
			"$STRIMZI_VERSION" "$STRIMZI_VERSION"
		printf '# Refresh: scripts/install-tools.sh schemas\n'
		cat "$s/kafkatopic.yaml"
	} >"$schemas/crd-strimzi-kafkatopics.yaml"
}

case "${1:-default}" in
helm) install_helm ;;
venv) install_venv ;;
schemas) install_schemas ;;
default) install_helm && install_venv ;;
all) install_helm && install_venv && install_schemas ;;
*)
	echo "usage: $0 [helm|venv|schemas|all]" >&2
	exit 2
	;;
esac
