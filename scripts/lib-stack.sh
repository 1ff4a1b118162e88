# shellcheck shell=bash
# shellcheck disable=SC2034 # the configuration variables are read by the scripts that source this file
# Shared shell functions of the embedded stack (scripts/stack.sh, scripts/test-it.sh, tests/it/*.sh).
# Source it; it sets the configuration from the environment and defines helpers. No side effects
# besides variables and functions.
#
# Configuration (environment):
#   DP_STACK_DIR                    stack folder: data/, logs/, pids/, conf/   (<repo>/.run)
#   DP_STACK_KAFKA_PORT             Kafka PLAINTEXT listener                   (9092)
#   DP_STACK_KAFKA_CONTROLLER_PORT  Kafka KRaft controller listener            (9093)
#   DP_STACK_KAFKA_HEAP             Kafka -Xmx/-Xms                             (512m)
#   DP_STACK_REDIS_PORT             Redis                                      (6379)
#   DP_STACK_MONGO_PORT             FerretDB (MongoDB wire protocol)           (27017)
#   DP_STACK_FERRET_DEBUG_PORT      FerretDB debug/metrics HTTP listener       (8088)
#   DP_STACK_SQLITE_SYNC            FerretDB's SQLite synchronous pragma       (normal)
#   DP_STACK_FERRET_GOGC            FerretDB's Go garbage-collector target     (400)
#   DP_STACK_FERRET_MAXPROCS        FerretDB's GOMAXPROCS; auto = Go's default  (1)
#   DP_PARTITIONS                   partitions of every topic                  (6)
#   DP_STACK_BIN_DIR                where the service binaries are             (<repo>/build/bin)
#   DP_STACK_PORT_<NAME>            HTTP port of a service, NAME = INGRESS, DELIVERY, PACKAGE,
#                                   SCHEDULER, WORKFLOW, DRONESIM               (8080..8085)
#   DP_STACK_TIMEOUT                seconds to wait for one component to become ready (90)
#   DP_FERRETDB_BIN                 FerretDB binary                            (.deps/bin/ferretdb)

DP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=versions.env
. "$DP_ROOT/scripts/versions.env"

STACK_DIR=${DP_STACK_DIR:-$DP_ROOT/.run}
mkdir -p "$STACK_DIR"
STACK_DIR=$(cd "$STACK_DIR" && pwd)
DATA_DIR=$STACK_DIR/data
LOG_DIR=$STACK_DIR/logs
PID_DIR=$STACK_DIR/pids
CONF_DIR=$STACK_DIR/conf

KAFKA_PORT=${DP_STACK_KAFKA_PORT:-9092}
KAFKA_CTRL_PORT=${DP_STACK_KAFKA_CONTROLLER_PORT:-9093}
KAFKA_HEAP=${DP_STACK_KAFKA_HEAP:-512m}
REDIS_PORT=${DP_STACK_REDIS_PORT:-6379}
MONGO_PORT=${DP_STACK_MONGO_PORT:-27017}
FERRET_DEBUG_PORT=${DP_STACK_FERRET_DEBUG_PORT:-8088}
SQLITE_SYNC=${DP_STACK_SQLITE_SYNC:-normal}
FERRET_GOGC=${DP_STACK_FERRET_GOGC:-400}
FERRET_MAXPROCS=${DP_STACK_FERRET_MAXPROCS:-1}
PARTITIONS=${DP_PARTITIONS:-6}
BIN_DIR=${DP_STACK_BIN_DIR:-$DP_ROOT/build/bin}
READY_TIMEOUT=${DP_STACK_TIMEOUT:-90}
FERRETDB_BIN=${DP_FERRETDB_BIN:-$DP_ROOT/.deps/bin/ferretdb}
KAFKA_LIB=$DP_ROOT/.deps/kafka-$KAFKA_VERSION/lib
TOPICS_FILE=$DP_ROOT/scripts/topics.txt

KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
MONGO_URI=mongodb://127.0.0.1:$MONGO_PORT/

# Services: name and default HTTP port. A service is started only when build/bin has its binary.
DP_SERVICES="ingress:8080 delivery:8081 package:8082 scheduler:8083 workflow:8084 dronesim:8085"

say() { printf '[stack] %s\n' "$*"; }
warn() { printf '[stack] %s\n' "$*" >&2; }
die() {
	printf '[stack] error: %s\n' "$*" >&2
	exit 1
}

# service_port NAME -> HTTP port (DP_STACK_PORT_<NAME> overrides the default)
service_port() {
	local name=$1 entry var
	var=DP_STACK_PORT_$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
	if [ -n "${!var:-}" ]; then
		printf '%s\n' "${!var}"
		return
	fi
	for entry in $DP_SERVICES; do
		[ "${entry%%:*}" = "$name" ] && printf '%s\n' "${entry#*:}" && return
	done
	return 1
}

# ---- processes -------------------------------------------------------------------------------

# proc_cmdline PID -> the process's command line, arguments separated by spaces
proc_cmdline() {
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null
}

# proc_is_ours PID NEEDLE... -> true when PID is alive and its command line (or, for a needle of
# the form env:X=Y, its environment) contains every needle. Guards against stale pid files whose
# PID now belongs to another process.
proc_is_ours() {
	local pid=$1 cmd n
	shift
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	[ -d "/proc/$pid" ] || return 1
	cmd=$(proc_cmdline "$pid") || return 1
	[ -n "$cmd" ] || return 1 # zombie or kernel thread
	for n in "$@"; do
		case $n in
		env:*)
			tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF -- "${n#env:}" || return 1
			;;
		*)
			case $cmd in *"$n"*) ;; *) return 1 ;; esac
			;;
		esac
	done
	return 0
}

# The needles identifying each component of THIS stack (the stack folder is in every command
# line of the infrastructure, and in the environment of the services).
component_needles() {
	case $1 in
	kafka) printf '%s\n' "kafka.Kafka" "$CONF_DIR/server.properties" ;;
	redis) printf '%s\n' "redis-server" "$CONF_DIR/redis.conf" ;;
	ferretdb) printf '%s\n' "ferretdb" "--state-dir=$DATA_DIR/ferretdb-state" ;;
	svc-*) printf '%s\n' "dronepipe-${1#svc-}" "env:DP_STACK_DIR=$STACK_DIR" ;;
	*) return 1 ;;
	esac
}

# running_pid COMPONENT -> prints the PID when the component's pid file names a live process of
# ours; returns 1 otherwise.
running_pid() {
	local comp=$1 pid needles=()
	[ -f "$PID_DIR/$comp.pid" ] || return 1
	pid=$(cat "$PID_DIR/$comp.pid" 2>/dev/null) || return 1
	mapfile -t needles < <(component_needles "$comp")
	proc_is_ours "$pid" "${needles[@]}" || return 1
	printf '%s\n' "$pid"
}

# start_bg COMPONENT LOGFILE CMD... -> starts CMD detached (nohup, stdin closed), writes the pid file.
start_bg() {
	local comp=$1 logf=$2
	shift 2
	mkdir -p "$PID_DIR" "$LOG_DIR"
	nohup "$@" >>"$logf" 2>&1 </dev/null &
	printf '%s\n' "$!" >"$PID_DIR/$comp.pid"
}

# stop_pid COMPONENT PID TIMEOUT -> SIGTERM, wait up to TIMEOUT seconds, then SIGKILL.
stop_pid() {
	local comp=$1 pid=$2 timeout=$3 t0
	kill -TERM "$pid" 2>/dev/null || true
	t0=$SECONDS
	while [ -d "/proc/$pid" ] && ! proc_is_zombie "$pid"; do
		if [ $((SECONDS - t0)) -ge "$timeout" ]; then
			warn "$comp (pid $pid) did not stop within ${timeout}s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
	# wait for the kernel to release it (and its ports)
	t0=$SECONDS
	while [ -d "/proc/$pid" ] && ! proc_is_zombie "$pid" && [ $((SECONDS - t0)) -lt 5 ]; do sleep 0.1; done
}

proc_is_zombie() {
	local st
	st=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
	[ "$st" = Z ]
}

# stop_component COMPONENT TIMEOUT -> stops it when running; removes its pid file.
stop_component() {
	local comp=$1 timeout=$2 pid
	if pid=$(running_pid "$comp"); then
		say "stopping $comp (pid $pid)"
		stop_pid "$comp" "$pid" "$timeout"
		STOPPED_ANY=1
	elif [ -f "$PID_DIR/$comp.pid" ]; then
		say "$comp: stale pid file removed (process $(cat "$PID_DIR/$comp.pid" 2>/dev/null) is not ours or gone)"
	fi
	rm -f "$PID_DIR/$comp.pid"
}

# orphans -> PIDs of infrastructure processes of this stack that no pid file names (e.g. a pid file
# was deleted by hand): processes whose command line carries this stack's folder the way Kafka,
# Redis or FerretDB started by this script do.
orphans() {
	local p pid comp needles known=" "
	for p in "$PID_DIR"/*.pid; do
		[ -f "$p" ] && known="$known$(cat "$p" 2>/dev/null) "
	done
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[ "$pid" = "$$" ] && continue
		case $known in *" $pid "*) continue ;; esac
		grep -qF "$STACK_DIR/" "$p/cmdline" 2>/dev/null || continue
		for comp in kafka redis ferretdb; do
			mapfile -t needles < <(component_needles "$comp")
			if proc_is_ours "$pid" "${needles[@]}"; then
				printf '%s %s\n' "$pid" "$comp"
				break
			fi
		done
	done
}

# ---- readiness ---------------------------------------------------------------------------------

# wait_for WHAT TIMEOUT PID CMD... -> polls CMD until it succeeds; fails early when PID died.
wait_for() {
	local what=$1 timeout=$2 pid=$3 t0=$SECONDS
	shift 3
	until "$@" >/dev/null 2>&1; do
		if [ -n "$pid" ] && { [ ! -d "/proc/$pid" ] || proc_is_zombie "$pid"; }; then
			warn "$what: process $pid exited before it was ready"
			return 1
		fi
		if [ $((SECONDS - t0)) -ge "$timeout" ]; then
			warn "$what: not ready after ${timeout}s"
			return 1
		fi
		sleep 0.2
	done
}

# port_open PORT -> true when something accepts TCP connections on 127.0.0.1:PORT
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

kafka_ready() {
	kcat -L -b "127.0.0.1:$KAFKA_PORT" -m 2 -t __dp_probe 2>/dev/null | grep -q 'broker 1 at'
}

redis_ready() {
	[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

http_ok() {
	[ "$(http_status "$1")" = 200 ]
}

http_status() {
	curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null
}

ferretdb_ready() {
	[ "$(http_status "http://127.0.0.1:$FERRET_DEBUG_PORT/debug/readyz")" = 200 ] || return 1
	if command -v python3 >/dev/null; then
		mongo_cmd "$MONGO_PORT" admin '{"ping": 1}' | grep -q '"ok": 1' || return 1
	else
		port_open "$MONGO_PORT"
	fi
}

# mongo_cmd PORT DB JSON -> runs one command over the MongoDB wire protocol (OP_MSG) and prints
# the reply as JSON. Needs only python3 (no driver). JSON key order is kept: the first key is the
# command name. Integers become int32 (int64 when large), {"$oid": "..."} an ObjectId.
mongo_cmd() {
	python3 - "$@" <<'PY'
import json, socket, struct, sys

def enc_val(v):
    if isinstance(v, bool): return 0x08, b"\x01" if v else b"\x00"
    if isinstance(v, int):
        if -2**31 <= v < 2**31: return 0x10, struct.pack("<i", v)
        return 0x12, struct.pack("<q", v)
    if isinstance(v, float): return 0x01, struct.pack("<d", v)
    if isinstance(v, str):
        b = v.encode(); return 0x02, struct.pack("<i", len(b) + 1) + b + b"\x00"
    if v is None: return 0x0A, b""
    if isinstance(v, dict):
        if list(v) == ["$oid"]: return 0x07, bytes.fromhex(v["$oid"])
        return 0x03, enc_doc(v)
    if isinstance(v, list): return 0x04, enc_doc({str(i): x for i, x in enumerate(v)})
    raise TypeError(type(v))

def enc_doc(d):
    body = b""
    for k, v in d.items():
        t, b = enc_val(v); body += bytes([t]) + k.encode() + b"\x00" + b
    return struct.pack("<i", len(body) + 5) + body + b"\x00"

def dec_doc(b, i, arr=False):
    n = struct.unpack_from("<i", b, i)[0]; end = i + n - 1; i += 4; out = {}
    while i < end:
        t = b[i]; i += 1; j = b.index(b"\x00", i); k = b[i:j].decode(); i = j + 1
        if t == 0x01: v = struct.unpack_from("<d", b, i)[0]; i += 8
        elif t in (0x02, 0x0D, 0x0E):
            l = struct.unpack_from("<i", b, i)[0]; v = b[i + 4:i + 3 + l].decode(); i += 4 + l
        elif t in (0x03, 0x04): v, i = dec_doc(b, i, t == 0x04)
        elif t == 0x05:
            l = struct.unpack_from("<i", b, i)[0]; v = b[i + 5:i + 5 + l].hex(); i += 5 + l
        elif t == 0x07: v = {"$oid": b[i:i + 12].hex()}; i += 12
        elif t == 0x08: v = b[i] == 1; i += 1
        elif t == 0x09: v = {"$date": struct.unpack_from("<q", b, i)[0]}; i += 8
        elif t in (0x0A, 0x06, 0x7F, 0xFF): v = None
        elif t == 0x10: v = struct.unpack_from("<i", b, i)[0]; i += 4
        elif t in (0x11, 0x12): v = struct.unpack_from("<q", b, i)[0]; i += 8
        elif t == 0x13: v = b[i:i + 16].hex(); i += 16
        else: raise ValueError("bson type %#x" % t)
        out[k] = v
    return (list(out.values()) if arr else out), end + 1

port, db, cmd = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
cmd["$db"] = db
body = struct.pack("<I", 0) + b"\x00" + enc_doc(cmd)
msg = struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(msg)
buf = b""
while len(buf) < 4 or len(buf) < struct.unpack_from("<i", buf)[0]:
    chunk = s.recv(65536)
    if not chunk: raise SystemExit("connection closed")
    buf += chunk
s.close()
doc, _ = dec_doc(buf, 21)
# report ok as an integer so callers can grep '"ok": 1'
if "ok" in doc: doc["ok"] = int(doc["ok"])
print(json.dumps(doc))
sys.exit(0 if doc.get("ok") == 1 else 1)
PY
}

# ---- Kafka -------------------------------------------------------------------------------------

kafka_java() {
	java -cp "$KAFKA_LIB/*" -Dlog4j.configuration="file:$CONF_DIR/tools-log4j.properties" "$@"
}

write_tools_log4j() {
	mkdir -p "$CONF_DIR"
	cat >"$CONF_DIR/tools-log4j.properties" <<EOF
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

# topics_list -> topic names of scripts/topics.txt
topics_list() {
	grep -v -E '^[[:space:]]*(#|$)' "$TOPICS_FILE" | awk '{print $1}'
}

# topics_present -> true when every topic of scripts/topics.txt exists with DP_PARTITIONS
# partitions (one kcat metadata request; configs are not checked: `stack.sh topics` does that)
topics_present() {
	local meta t
	meta=$(kcat -L -b "$KAFKA_BROKERS" -m 5 2>/dev/null) || return 1
	for t in $(topics_list); do
		grep -qF "  topic \"$t\" with $PARTITIONS partitions:" <<<"$meta" || return 1
	done
}

# ensure_topics -> creates every missing topic of scripts/topics.txt in ONE JVM (a small Java
# program run by the JDK source launcher; the Admin client of kafka-clients does the work):
# existing topics are left alone except that a config named in topics.txt is set when it differs.
# A partition count different from DP_PARTITIONS is reported, never changed (it would re-key).
ensure_topics() {
	write_tools_log4j
	mkdir -p "$CONF_DIR/tools"
	cat >"$CONF_DIR/tools/DpTopics.java" <<'JAVA'
import java.nio.file.*;
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;

public class DpTopics {
    public static void main(String[] a) throws Exception {
        String bootstrap = a[0];
        int partitions = Integer.parseInt(a[1]);
        Map<String, Map<String, String>> want = new LinkedHashMap<>();
        for (String line : Files.readAllLines(Paths.get(a[2]))) {
            line = line.trim();
            if (line.isEmpty() || line.startsWith("#")) continue;
            String[] f = line.split("\\s+");
            Map<String, String> cfg = new LinkedHashMap<>();
            for (int i = 1; i < f.length; i++) {
                int eq = f[i].indexOf('=');
                if (eq < 1) throw new IllegalArgumentException("bad config '" + f[i] + "' in " + a[2]);
                cfg.put(f[i].substring(0, eq), f[i].substring(eq + 1));
            }
            want.put(f[0], cfg);
        }
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        int rc = 0;
        try (Admin admin = Admin.create(p)) {
            Set<String> have = admin.listTopics().names().get();
            List<NewTopic> create = new ArrayList<>();
            for (Map.Entry<String, Map<String, String>> e : want.entrySet())
                if (!have.contains(e.getKey()))
                    create.add(new NewTopic(e.getKey(), partitions, (short) 1).configs(e.getValue()));
            List<String> created = new ArrayList<>();
            if (!create.isEmpty()) {
                Map<String, KafkaFuture<Void>> res = admin.createTopics(create).values();
                for (NewTopic nt : create) {
                    try {
                        res.get(nt.name()).get();
                        created.add(nt.name());
                    } catch (ExecutionException ex) {
                        if (!(ex.getCause() instanceof TopicExistsException)) {
                            System.err.println("topics: cannot create " + nt.name() + ": " + ex.getCause());
                            rc = 1;
                        }
                    }
                }
            }
            // Existing topics: check partitions, align the configs listed in topics.txt.
            List<String> existing = new ArrayList<>();
            for (String t : want.keySet()) if (have.contains(t)) existing.add(t);
            if (!existing.isEmpty()) {
                Map<String, TopicDescription> d = admin.describeTopics(existing).allTopicNames().get();
                for (TopicDescription td : d.values())
                    if (td.partitions().size() != partitions)
                        System.err.println("topics: warning: " + td.name() + " has " + td.partitions().size()
                                + " partitions, DP_PARTITIONS is " + partitions + " (left unchanged)");
                List<ConfigResource> res = new ArrayList<>();
                for (String t : existing)
                    if (!want.get(t).isEmpty()) res.add(new ConfigResource(ConfigResource.Type.TOPIC, t));
                if (!res.isEmpty()) {
                    Map<ConfigResource, Config> cur = admin.describeConfigs(res).all().get();
                    Map<ConfigResource, Collection<AlterConfigOp>> alter = new HashMap<>();
                    for (ConfigResource r : res)
                        for (Map.Entry<String, String> c : want.get(r.name()).entrySet()) {
                            ConfigEntry ce = cur.get(r).get(c.getKey());
                            if (ce == null || !c.getValue().equals(ce.value())) {
                                System.out.println("topics: set " + r.name() + " " + c.getKey() + "=" + c.getValue());
                                alter.computeIfAbsent(r, k -> new ArrayList<>()).add(new AlterConfigOp(
                                        new ConfigEntry(c.getKey(), c.getValue()), AlterConfigOp.OpType.SET));
                            }
                        }
                    if (!alter.isEmpty()) admin.incrementalAlterConfigs(alter).all().get();
                }
            }
            System.out.println("topics: " + want.size() + " wanted, " + created.size() + " created, "
                    + existing.size() + " already present" + (created.isEmpty() ? "" : " (created: " + String.join(", ", created) + ")"));
        }
        System.exit(rc);
    }
}
JAVA
	kafka_java "$CONF_DIR/tools/DpTopics.java" "$KAFKA_BROKERS" "$PARTITIONS" "$TOPICS_FILE"
}
