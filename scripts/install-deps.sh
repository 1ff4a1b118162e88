#!/usr/bin/env bash
# Installs everything dronepipe needs on a bare Debian 12 machine. Idempotent: each step checks
# first and does nothing when its result is already there.
#   Debian packages (C libraries, redis-server, kcat, wrk and perf for the bench, clang for
#   sanitizers/fuzzing; avro-c only for the tests, as the reference encoder: the binaries do not
#   link it)
#   Apache Kafka broker jars from Maven Central  -> .deps/kafka-<ver>/lib
#   FerretDB built from the Go module proxy       -> .deps/bin/ferretdb
#   Chromium (Debian) and playwright-core (npm)  -> tests/browser/node_modules (browser test)
# Usage: scripts/install-deps.sh [apt|kafka|ferretdb|browser|all]   (default all)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/versions.env"
deps="$root/.deps"
mkdir -p "$deps/bin"

log() { printf '[install] %s\n' "$*" >&2; }

APT_PKGS="build-essential pkg-config librdkafka-dev libavro-dev libhiredis-dev libmongoc-dev
  libbson-dev libmicrohttpd-dev libcmocka-dev libjansson-dev uuid-dev libgnutls28-dev libjwt-dev
  redis-server redis-tools kcat wrk linux-perf clang libclang-rt-14-dev clang-format curl ca-certificates
  openjdk-17-jre-headless maven golang-go python3 procps psmisc openssl"

install_apt() {
	local missing=()
	for p in $APT_PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	# java/mvn/go may come from elsewhere on the machine (e.g. an SDK in PATH): keep those.
	local want=()
	for p in "${missing[@]}"; do
		case $p in
		openjdk-17-jre-headless) command -v java >/dev/null && continue ;;
		maven) command -v mvn >/dev/null && continue ;;
		golang-go) command -v go >/dev/null && continue ;;
		python3) command -v python3 >/dev/null && continue ;;
		esac
		want+=("$p")
	done
	if [ ${#want[@]} -eq 0 ]; then
		log "debian packages: present"
		return
	fi
	log "debian packages: installing ${want[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
	# The packaged redis-server starts a system instance on 6379; the project runs its own.
	if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
		systemctl stop redis-server || true
		systemctl disable redis-server >/dev/null 2>&1 || true
	fi
	if [ -f /var/run/redis/redis-server.pid ]; then
		kill "$(cat /var/run/redis/redis-server.pid)" 2>/dev/null || true
	fi
}

install_kafka() {
	local dir="$deps/kafka-$KAFKA_VERSION"
	if [ -f "$dir/.complete" ]; then
		log "kafka $KAFKA_VERSION: present"
		return
	fi
	log "kafka $KAFKA_VERSION: fetching jars from Maven Central"
	rm -rf "$dir" && mkdir -p "$dir/lib"
	local pom="$dir/pom.xml"
	cat >"$pom" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dronepipe</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_$KAFKA_SCALA</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
	(cd "$dir" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime)
	touch "$dir/.complete"
}

install_ferretdb() {
	local bin="$deps/bin/ferretdb" mod src p patches=() stamp
	# dronepipe's patches over the release (scripts/patches/README.md); the stamp names them, so
	# adding one rebuilds
	for p in "$root/scripts/patches/ferretdb-$FERRETDB_VERSION-"*.patch; do
		[ -f "$p" ] && patches+=("$p")
	done
	stamp="$deps/bin/.ferretdb-$FERRETDB_VERSION$(for p in "${patches[@]}"; do printf '+%s' "$(basename "$p" .patch)"; done)"
	if [ -x "$bin" ] && [ -f "$stamp" ] && "$bin" --version >/dev/null 2>&1; then
		log "ferretdb $FERRETDB_VERSION: present"
		return
	fi
	log "ferretdb $FERRETDB_VERSION: building from the Go module proxy"
	# A plain `go install mod@ver` builds a binary that panics at start: FerretDB reads
	# build/version/version.txt, which its build generates and the module zip lacks.
	mod=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$mod" ] || {
		log "ferretdb: module download failed"
		return 1
	}
	src=$(mktemp -d)
	cp -r "$mod/." "$src" && chmod -R u+w "$src"
	echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
	for p in "${patches[@]}"; do
		log "ferretdb: applying $(basename "$p")"
		(cd "$src" && git apply --unsafe-paths -p1 "$p") || {
			log "ferretdb: $p does not apply"
			rm -rf "$src"
			return 1
		}
	done
	(cd "$src" && go build -buildvcs=false -o "$bin" ./cmd/ferretdb)
	rm -rf "$src"
	"$bin" --version >/dev/null
	rm -f "$deps/bin/.ferretdb-"*
	touch "$stamp"
}

install_browser() {
	# Headless Chromium (Debian package) + playwright-core from npm for tests/browser/. The npm
	# tree is pinned by tests/browser/package-lock.json and installed into the git-ignored
	# tests/browser/node_modules; Playwright's own browser download is never used.
	export DEBIAN_FRONTEND=noninteractive
	if [ -x /usr/bin/chromium ] && /usr/bin/chromium --version >/dev/null 2>&1; then
		log "chromium: present"
	else
		log "chromium: installing the Debian package"
		# with its Recommends (they bring fonts-liberation for the page's text); the
		# --no-install-recommends variant was not verified for headless use
		apt-get install -y -qq chromium >/dev/null 2>&1 || {
			apt-get update -qq
			apt-get install -y -qq chromium >/dev/null
		}
		/usr/bin/chromium --version >/dev/null 2>&1 || {
			log "chromium: installed, but /usr/bin/chromium --version fails"
			return 1
		}
	fi
	command -v npm >/dev/null || {
		log "browser: npm is missing (install node 20 / npm)"
		return 1
	}
	local dir="$root/tests/browser" want have
	want=$PLAYWRIGHT_CORE_VERSION
	have=$(node -p 'require(process.argv[1]).version' "$dir/node_modules/playwright-core/package.json" 2>/dev/null || true)
	if [ "$have" = "$want" ]; then
		log "playwright-core $want: present"
		return
	fi
	log "playwright-core $want: npm ci into tests/browser/node_modules"
	(cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	have=$(node -p 'require(process.argv[1]).version' "$dir/node_modules/playwright-core/package.json")
	[ "$have" = "$want" ] || {
		log "playwright-core: installed $have, but scripts/versions.env pins $want (update tests/browser/package.json and package-lock.json)"
		return 1
	}
}

what=${1:-all}
case $what in
apt) install_apt ;;
kafka) install_kafka ;;
ferretdb) install_ferretdb ;;
browser) install_browser ;;
all)
	install_apt
	install_kafka
	install_ferretdb
	install_browser
	;;
*)
	echo "usage: $0 [apt|kafka|ferretdb|browser|all]" >&2
	exit 2
	;;
esac
