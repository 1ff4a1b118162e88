#!/usr/bin/env bash
# Installs everything dronepipe needs on a bare Debian 12 machine. Idempotent: each step checks
# first and does nothing when its result is already there.
#   Debian packages (C libraries, redis-server, kcat, wrk and perf for the bench, clang for
#   sanitizers/fuzzing; avro-c only for the tests, as the reference encoder: the binaries do not
#   link it)
#   Apache Kafka broker jars from Maven Central  -> .deps/kafka-<ver>/lib
#   Go toolchain from the Go module proxy        -> .deps/go (only when the machine's `go` is
#                                                   missing or older than FerretDB's go.mod asks)
#   FerretDB built from the Go module proxy       -> .deps/bin/ferretdb
#   Chromium (Debian) and playwright-core (npm)  -> tests/browser/node_modules (browser test;
#                                                   needs node >= 20, see install_browser)
# Usage: scripts/install-deps.sh [apt|kafka|go|ferretdb|browser|test-fresh|all]   (default all;
#        test-fresh: mmdebstrap for `make test-fresh`, not part of all)
# Downloads go through curl, Maven and the go command, so they use the machine's proxy settings
# (https_proxy, ~/.m2/settings.xml, GOPROXY) and trust store.
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
  openjdk-17-jre-headless maven python3 procps psmisc openssl git unzip"
# No golang-go: Debian 12's Go is 1.19, too old for FerretDB's go.mod (install_go fetches one).
# Only for `make test-fresh` (scripts/install-deps.sh test-fresh), never part of `all`.
TEST_FRESH_PKGS="mmdebstrap"

install_apt() {
	local missing=()
	for p in $APT_PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	# java/mvn may come from elsewhere on the machine (e.g. an SDK in PATH): keep those.
	local want=()
	for p in "${missing[@]}"; do
		case $p in
		openjdk-17-jre-headless) command -v java >/dev/null && continue ;;
		maven) command -v mvn >/dev/null && continue ;;
		python3) command -v python3 >/dev/null && continue ;;
		git) command -v git >/dev/null && continue ;;
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

install_test_fresh() {
	local p want=()
	for p in $TEST_FRESH_PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || want+=("$p")
	done
	if [ ${#want[@]} -eq 0 ]; then
		log "test-fresh packages: present"
		return
	fi
	log "test-fresh packages: installing ${want[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null 2>&1 || {
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
	}
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

# ---- Go ----------------------------------------------------------------------------------------
# GO is the go command install_go chose; the FerretDB build runs it with GOTOOLCHAIN=local, so a
# newer go.mod never makes it download another toolchain behind our back.
GO=

# go_env_setting NAME -> the value go would use for NAME even when no go is installed yet: the
# environment, else `go env`, else the go env file (GOENV, ~/.config/go/env), else empty.
go_env_setting() {
	local name=$1 file
	if [ -n "${!name:-}" ]; then
		printf '%s\n' "${!name}"
	elif command -v go >/dev/null 2>&1; then
		go env "$name" 2>/dev/null
	else
		file=${GOENV:-${XDG_CONFIG_HOME:-$HOME/.config}/go/env}
		if [ -f "$file" ]; then sed -n "s/^$name=//p" "$file" | tail -n 1; fi
	fi
	return 0
}

# go_proxy -> the first proxy URL of GOPROXY (a list: "https://a,https://b|direct"); the Go
# default when GOPROXY names none. `direct` and `off` are not proxies: the toolchain and FerretDB's
# go.mod are then fetched from proxy.golang.org, as the go command itself does for toolchains.
go_proxy() {
	local list entry
	list=$(go_env_setting GOPROXY)
	for entry in $(printf '%s' "${list:-https://proxy.golang.org}" | tr ',|' '  '); do
		case $entry in http://* | https://* | file://*)
			printf '%s\n' "${entry%/}"
			return
			;;
		esac
	done
	printf '%s\n' https://proxy.golang.org
}

# go_mod_escape PATH -> the module proxy's spelling of PATH (an upper-case letter X becomes !x)
go_mod_escape() {
	printf '%s' "$1" | sed 's/[A-Z]/!\L&/g'
}

# go_version_of GO -> "1.26.8" for that go command, empty when it does not run
go_version_of() {
	"$1" version 2>/dev/null | sed -n 's/^go version go\([0-9][^ ]*\) .*/\1/p'
}

# version_at_least HAVE WANT -> true when Go version HAVE >= WANT (1.24 <= 1.24.0 <= 1.24.3)
version_at_least() {
	[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

# ferretdb_go_needs -> the `go` directive of FerretDB's go.mod at FERRETDB_VERSION, read from
# the module proxy (the go line is the minimum; its toolchain line is only a preference)
ferretdb_go_needs() {
	local url want
	url="$(go_proxy)/$(go_mod_escape github.com/FerretDB/FerretDB)/@v/$FERRETDB_VERSION.mod"
	want=$(curl -fsSL --retry 3 "$url" | sed -n 's/^go \([0-9][0-9.]*\)[[:space:]]*$/\1/p') || true
	[ -n "$want" ] || {
		log "go: could not read the go directive of FerretDB's go.mod ($url)"
		return 1
	}
	printf '%s\n' "$want"
}

install_go() {
	local want have dir="$deps/go" arch sum url cache zip tmp
	want=$(ferretdb_go_needs) || return 1
	have=$(command -v go >/dev/null 2>&1 && go_version_of go || true)
	if [ -n "$have" ] && version_at_least "$have" "$want"; then
		log "go: the machine's go $have builds FerretDB $FERRETDB_VERSION (needs $want)"
		GO=$(command -v go)
		return
	fi
	version_at_least "$GO_TOOLCHAIN_VERSION" "$want" || {
		log "go: scripts/versions.env pins GO_TOOLCHAIN_VERSION=$GO_TOOLCHAIN_VERSION, but FerretDB $FERRETDB_VERSION needs go $want (raise it, with its SHA-256 sums)"
		return 1
	}
	if [ "$(go_version_of "$dir/bin/go")" = "$GO_TOOLCHAIN_VERSION" ]; then
		log "go $GO_TOOLCHAIN_VERSION: present in .deps/go (the machine's go: ${have:-none}, FerretDB needs $want)"
		GO=$dir/bin/go
		return
	fi
	case $(uname -m) in
	x86_64 | amd64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	*)
		log "go: no pinned toolchain for $(uname -m); install go >= $want and run again"
		return 1
		;;
	esac
	sum=GO_TOOLCHAIN_SHA256_$arch
	sum=${!sum}
	# The toolchain is the module golang.org/toolchain, version v0.0.1-go<ver>.linux-<arch>. Its
	# zip is kept where the go command caches module downloads, so a later run (or go itself)
	# finds it there.
	url="$(go_proxy)/golang.org/toolchain/@v/v0.0.1-go$GO_TOOLCHAIN_VERSION.linux-$arch.zip"
	cache=$(go_env_setting GOMODCACHE)
	[ -n "$cache" ] || { cache=$(go_env_setting GOPATH); cache=${cache%%:*}; cache=${cache:-$HOME/go}/pkg/mod; }
	cache=$cache/cache/download/golang.org/toolchain/@v
	zip=$cache/v0.0.1-go$GO_TOOLCHAIN_VERSION.linux-$arch.zip
	if [ -f "$zip" ] && printf '%s  %s\n' "$sum" "$zip" | sha256sum -c --status; then
		log "go $GO_TOOLCHAIN_VERSION: the machine's go is ${have:-missing}, FerretDB needs $want; unpacking the cached toolchain"
	else
		log "go $GO_TOOLCHAIN_VERSION: the machine's go is ${have:-missing}, FerretDB needs $want; fetching $url"
		mkdir -p "$cache"
		curl -fsSL --retry 3 -o "$zip.part" "$url" || {
			rm -f "$zip.part"
			log "go: download failed: $url"
			return 1
		}
		printf '%s  %s\n' "$sum" "$zip.part" | sha256sum -c --status || {
			log "go: $url does not match GO_TOOLCHAIN_SHA256_$arch of scripts/versions.env; not used"
			rm -f "$zip.part"
			return 1
		}
		mv "$zip.part" "$zip"
	fi
	tmp=$(mktemp -d "$deps/.go.XXXXXX")
	unzip -q "$zip" -d "$tmp"
	rm -rf "$dir"
	mv "$tmp/golang.org/toolchain@v0.0.1-go$GO_TOOLCHAIN_VERSION.linux-$arch" "$dir"
	rm -rf "$tmp"
	[ "$(go_version_of "$dir/bin/go")" = "$GO_TOOLCHAIN_VERSION" ] || {
		log "go: the unpacked toolchain does not run ($dir/bin/go version)"
		return 1
	}
	GO=$dir/bin/go
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
	install_go || return 1
	log "ferretdb $FERRETDB_VERSION: building from the Go module proxy with go $(go_version_of "$GO")"
	export GOTOOLCHAIN=local
	# A plain `go install mod@ver` builds a binary that panics at start: FerretDB reads
	# build/version/version.txt, which its build generates and the module zip lacks.
	mod=$(cd /tmp && GOFLAGS=-mod=mod "$GO" mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
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
	(cd "$src" && "$GO" build -buildvcs=false -o "$bin" ./cmd/ferretdb)
	rm -rf "$src"
	"$bin" --version >/dev/null
	rm -f "$deps/bin/.ferretdb-"*
	touch "$stamp"
}

# node_major -> the major version of the machine's node, empty without node
node_major() {
	if command -v node >/dev/null; then node --version | sed -n 's/^v\([0-9]*\)\..*/\1/p'; fi
	return 0
}

# install_browser [optional]: with `optional` (the `all` step, so `make up`), a machine without
# npm and node >= 20 gets a warning instead of a failure: only tests/it/test_track_browser.sh
# needs them, and Debian 12's own nodejs is 18 (playwright-core needs 20).
install_browser() {
	# Headless Chromium (Debian package) + playwright-core from npm for tests/browser/. The npm
	# tree is pinned by tests/browser/package-lock.json and installed into the git-ignored
	# tests/browser/node_modules; Playwright's own browser download is never used.
	local major
	major=$(node_major)
	if ! command -v npm >/dev/null || [ "${major:-0}" -lt 20 ]; then
		local found="node ${major:-none}$(command -v npm >/dev/null || echo ', no npm')"
		if [ "${1:-}" = optional ]; then
			log "browser test: skipped (npm and node >= 20 needed, found $found); make up does not need it, tests/it/test_track_browser.sh does: install node 20 and run scripts/install-deps.sh browser"
			return
		fi
		log "browser: npm and node >= 20 needed (playwright-core), found $found: install node 20 / npm"
		return 1
	fi
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
go) install_go ;;
ferretdb) install_ferretdb ;;
browser) install_browser ;;
test-fresh) install_test_fresh ;;
all)
	install_apt
	install_kafka
	install_ferretdb
	install_browser optional
	;;
*)
	echo "usage: $0 [apt|kafka|go|ferretdb|browser|test-fresh|all]" >&2
	exit 2
	;;
esac
