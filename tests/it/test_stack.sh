#!/usr/bin/env bash
# Integration test of the embedded infrastructure (run by scripts/test-it.sh against the isolated
# stack; also runs by hand against `make up`'s stack with no environment set):
#   - every topic of scripts/topics.txt exists with DP_PARTITIONS partitions
#   - the configs named in topics.txt are set (the workflow changelog is compacted), and the other
#     topics are not compacted
#   - a record produced with kcat is consumed back, with its key and headers
#   - Redis answers PING; FerretDB accepts a connection and does an insert + find over the wire
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source-path=SCRIPTDIR/../../scripts source=lib-stack.sh
. "$root/scripts/lib-stack.sh"
brokers=${DP_KAFKA_BROKERS:-$KAFKA_BROKERS}
redis_url=${DP_REDIS_URL:-$REDIS_URL}
mongo_uri=${DP_MONGO_URI:-$MONGO_URI}
mongo_port=${mongo_uri#mongodb://}
mongo_port=${mongo_port%%/*}
mongo_port=${mongo_port##*:}

fails=0
ok() { echo "ok   - $*"; }
bad() {
	echo "FAIL - $*"
	fails=$((fails + 1))
}

# --- topics and partitions (one metadata request) ---
meta=$(kcat -L -b "$brokers" -m 10 2>&1) || bad "kcat -L: $meta"
mapfile -t topics < <(topics_list)
if [ ${#topics[@]} -ge 15 ]; then ok "scripts/topics.txt lists ${#topics[@]} topics"; else bad "topics.txt lists only ${#topics[@]} topics"; fi
for t in "${topics[@]}"; do
	n=$(printf '%s\n' "$meta" | sed -n "s/^  topic \"$(printf '%s' "$t" | sed 's/\./\\./g')\" with \([0-9]*\) partitions:.*/\1/p")
	if [ -z "$n" ]; then
		bad "topic $t missing"
	elif [ "$n" != "$PARTITIONS" ]; then
		bad "topic $t has $n partitions, want $PARTITIONS"
	else
		ok "topic $t: $n partitions"
	fi
done
# every consumed topic has its dead-letter topic (the changelog is written and read by workflow only)
for t in "${topics[@]}"; do
	case $t in *.dlq | dronedelivery.workflow.state) continue ;; esac
	if printf '%s\n' "${topics[@]}" | grep -qxF "$t.dlq"; then
		ok "topic $t has $t.dlq"
	else
		bad "no dead-letter topic for $t"
	fi
done

# --- topic configs: one ConfigCommand run describes the dynamic configs of every topic ---
write_tools_log4j
cfg=$(kafka_java kafka.admin.ConfigCommand --bootstrap-server "$brokers" --entity-type topics --describe 2>&1) ||
	bad "ConfigCommand failed: $cfg"
# "Dynamic configs for topic X are:" followed by "  key=value sensitive=... synonyms=..." lines
declare -A dyn=()
cur=
while IFS= read -r line; do
	case $line in
	"Dynamic configs for topic "*) cur=${line#Dynamic configs for topic }; cur=${cur% are:} ;;
	"  "*=*) [ -n "$cur" ] && dyn[$cur]+=" ${line#  }" ;;
	esac
done <<<"$cfg"
while read -r t rest; do
	for kv in $rest; do
		case " ${dyn[$t]:-} " in
		*" $kv "*) ok "topic $t: $kv" ;;
		*) bad "topic $t: want $kv, dynamic configs are:${dyn[$t]:- none}" ;;
		esac
	done
	case "$rest" in *cleanup.policy=*) ;; *)
		case " ${dyn[$t]:-} " in *" cleanup.policy=compact "*) bad "topic $t is compacted but topics.txt does not say so" ;; esac
		;;
	esac
done < <(grep -v -E '^[[:space:]]*(#|$)' "$TOPICS_FILE")
case " ${dyn[dronedelivery.workflow.state]:-} " in
*" cleanup.policy=compact "*) ok "workflow changelog is compacted" ;;
*) bad "dronedelivery.workflow.state is not compacted" ;;
esac

# --- produce and consume back ---
topic=dronedelivery.requests
key=it-$$-$RANDOM
val="stack-test $(date +%s%N)"
if printf '%s\n' "$val" | kcat -P -b "$brokers" -t "$topic" -k "$key" -H "event_type=StackTest" -X acks=all -X enable.idempotence=true 2>&1; then
	got=$(kcat -C -b "$brokers" -t "$topic" -o beginning -e -q -m 10 -f '%k|%h|%s\n' 2>&1 | grep -aF "$key|" | head -n 1)
	if [ "$got" = "$key|event_type=StackTest|$val" ]; then
		ok "produced and consumed back a record on $topic (key, header, value)"
	else
		bad "consume back: got '$got'"
	fi
else
	bad "kcat produce failed"
fi

# --- Redis ---
r=$(redis-cli -u "$redis_url" ping 2>&1)
if [ "$r" = PONG ]; then ok "redis $redis_url: PING -> PONG"; else bad "redis PING: $r"; fi

# --- FerretDB ---
if port_open "$mongo_port"; then
	ok "ferretdb accepts TCP connections on $mongo_port"
else
	bad "ferretdb: no TCP listener on $mongo_port"
fi
if command -v python3 >/dev/null; then
	id=$(printf '%024x' "$(date +%s%N)" | tail -c 24)
	if r=$(mongo_cmd "$mongo_port" dp_it "{\"insert\": \"stack\", \"documents\": [{\"_id\": {\"\$oid\": \"$id\"}, \"k\": \"$key\"}]}" 2>&1); then
		ok "ferretdb insert: $r"
	else
		bad "ferretdb insert: $r"
	fi
	r=$(mongo_cmd "$mongo_port" dp_it "{\"find\": \"stack\", \"filter\": {\"k\": \"$key\"}}" 2>&1)
	case $r in
	*"\"$key\""*'"ok": 1'*) ok "ferretdb find returns the document" ;;
	*) bad "ferretdb find: $r" ;;
	esac
	mongo_cmd "$mongo_port" dp_it '{"dropDatabase": 1}' >/dev/null 2>&1 || true
fi

echo "test_stack: $fails failure(s)"
[ "$fails" -eq 0 ]
