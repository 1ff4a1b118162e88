#!/usr/bin/env bash
# Integration test of the ops CLI (`dronepipe topics|replay|dlq|tail`) against the real broker
# (scripts/test-it.sh provides it). Topics are created per run (ops.it.<run>.*) by the helper
# build/tests/it/ops_feed, which also produces Avro events, dead letters with their headers and
# garbage records. Covers: --help and bad arguments, an unreachable broker; topics with a group's
# lag; replay --dry-run (plan printed, nothing changed), applied --to-earliest, refusal naming the
# members, --wait; poison records dead-lettered by dronepipe-package and shown by dlq show; dlq
# list/show/filter; redrive of 1,000 records killed (-9) half-way and re-run -> each exactly once;
# a crash between the acknowledgements and the commit -> no duplicate; tail over a garbage record.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
trap stop_children EXIT

D=$bin/dronepipe
F=$build/tests/it/ops_feed
run=$(date +%s%N | cut -c9-16)
T=ops.it.$run
G=ops-it-$run
if [ ! -x "$F" ] || [ ! -x "$D" ]; then
	bad "built: $D and $F (make build/bin/dronepipe build/tests/it/ops_feed)"
	finish test_ops
	exit 1
fi
out=$logdir/ops.out
err=$logdir/ops.err

# --- help, bad arguments, unreachable broker ---
for c in topics replay dlq tail; do
	check "$c --help prints its usage and exits 0" bash -c "'$D' $c --help | grep -q '^usage: dronepipe $c'"
done
"$D" replay --topic x --to-earliest >"$out" 2>"$err"
check "replay without --group -> exit 1 with a clear message" [ $? = 1 ]
check "  ... message names --group" grep -q -- '--group G is required' "$err"
"$D" replay --group g --topic x --to-earliest --by-duration 1h >"$out" 2>"$err"
check "replay with two resets -> exit 1" [ $? = 1 ]
"$D" dlq purge --topic x.dlq >"$out" 2>"$err"
check "dlq with an unknown action -> exit 1" [ $? = 1 ]
"$D" dlq list --topic x.dlq --limit zero >"$out" 2>"$err"
check "dlq --limit zero -> exit 1 naming --limit" grep -q -- "--limit must be a positive integer" "$err"
"$D" --brokers 127.0.0.1:1 topics >"$out" 2>"$err"
rc=$?
check "unreachable broker -> exit 2 (got $rc)" [ $rc = 2 ]
check "  ... with 'cannot reach Kafka at 127.0.0.1:1'" grep -q 'cannot reach Kafka at 127.0.0.1:1' "$err"
"$D" replay --group g --topic ops.it.no-such-topic --to-earliest >"$out" 2>"$err"
check "replay on an unknown topic -> exit 1" [ $? = 1 ]

# --- topics, lag, replay plan ---
"$F" create "$T" 3 && "$F" valid "$T" 30 k
check "created $T with 30 records" [ $? = 0 ]
"$D" replay --group "$G" --topic "$T" --to-earliest --dry-run >"$out" 2>"$err"
check "replay --dry-run exits 0" [ $? = 0 ]
check "  ... prints the plan per partition" grep -qE '^2 +- -> 0 ' "$out"
check "  ... says nothing changed" grep -q '^dry run: nothing changed' "$out"
json=$("$D" topics --json --group "$G" "$T")
check "  ... and nothing changed: the group has no committed offsets" \
	[ "$(json_get "$json" 'len(d["groups"][0]["topics"])')" = 0 ]
"$D" replay --group "$G" --topic "$T" --to-earliest >"$out" 2>"$err"
check "replay --to-earliest applied" grep -q '^applied' "$out"
json=$("$D" topics --json --group "$G" "$T")
check "committed offsets are at the start of every partition" \
	[ "$(json_get "$json" '[p["committed"] for p in d["groups"][0]["topics"][0]["partitions"]]')" = "[0, 0, 0]" ]
check "topics reports the group's lag: 30 records, > 0 s" \
	[ "$(json_get "$json" 'd["groups"][0]["topics"][0]["lag"] == 30 and d["groups"][0]["topics"][0]["lag_seconds"] > 0')" = True ]
"$D" topics >"$out" 2>"$err"
check "topics (text) lists the topic with 3 partitions" grep -qE "^$T +3 +30 " "$out"
check "topics (text) lists the group's lag on it" grep -qE "^$G +$T +Empty +0 +0 +30 " "$out"
"$D" replay --group "$G" --topic "$T" --to-time "$(date -u +%Y-%m-%dT%H:%M:%SZ -d '+1 hour')" --dry-run --json >"$out"
check "replay --to-time (future) --dry-run plans to skip all 30" \
	[ "$(json_get "$(cat "$out")" 'd["totals"]["skip"]')" = 30 ]
json=$("$D" topics --json --group "$G" "$T")
check "  ... and changed nothing (lag still 30)" [ "$(json_get "$json" 'd["groups"][0]["topics"][0]["lag"]')" = 30 ]

# a live member: kcat in a balanced consumer group
kcat -b "$DP_KAFKA_BROKERS" -G "$G" -X client.id=ops-it-member -q "$T" >/dev/null 2>&1 &
member=$!
children+=($member)
members() { "$D" topics --json --group "$G" "$T" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["groups"][0]["members"]))'; }
wait_until 30 bash -c "[ \"\$($(declare -f members); D='$D' G='$G' T='$T' members)\" = 1 ]"
"$D" replay --group "$G" --topic "$T" --to-earliest >"$out" 2>"$err"
rc=$?
check "replay refuses while the group has a member (exit 3, got $rc)" [ $rc = 3 ]
check "  ... naming the member" grep -q 'refusing to reset group .* 1 active member(s): ops-it-member' "$err"
(sleep 2 && kill "$member") &
"$D" replay --group "$G" --topic "$T" --to-earliest --wait --wait-timeout 40s >"$out" 2>"$err"
check "replay --wait waits for the group to empty, then applies" grep -q '^applied' "$out"

# --- poison records in dronedelivery.package.commands -> DLQ -> dlq show ---
if [ -x "$bin/dronepipe-package" ]; then
	start_service dronepipe-package ops-package DP_HTTP_PORT=18186 \
		DP_MONGO_URI="${DP_MONGO_URI:-mongodb://127.0.0.1:27017/}" >/dev/null
	"$F" raw dronedelivery.package.commands "poison-$run-text" "this is not avro" &&
		"$F" raw dronedelivery.package.commands "poison-$run-fp" $'\xc3\x01unknownfp'
	pdlq=dronedelivery.package.commands.dlq
	poisons() { "$D" dlq list --json --topic "$pdlq" | grep -c "poison-$run"; }
	wait_until 60 bash -c "[ \"\$($(declare -f poisons); D='$D' pdlq='$pdlq' run='$run' poisons)\" = 2 ]"
	check "2 poison records landed in $pdlq" [ "$(poisons)" = 2 ]
	"$D" dlq show --topic "$pdlq" --json | grep "poison-$run" >"$out"
	check "  ... with their reasons, source and group" python3 - "$out" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
for r in rs:
    assert r["error_class"] == "decode" and r["error"], r
    assert r["source_topic"] == "dronedelivery.package.commands" and r["group"] == "package", r
    assert r["value_error"].startswith("undecodable"), r
PY
	pos=$(python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline()); print("%d:%d" % (r["partition"], r["offset"]))' "$out")
	"$D" dlq show --topic "$pdlq" --offset "$pos" >"$out" 2>"$err"
	check "dlq show (text) prints the reason and the undecodable value" \
		bash -c "grep -q '^error: .*(decode)' '$out' && grep -q 'undecodable' '$out'"
	stop_children
else
	bad "dronepipe-package is not built: cannot inject poison records"
fi

# --- dlq list/show/filter on dead letters with their headers ---
S=$T.src
"$F" create "$S" 3 && "$F" create "$S.dlq" 3 &&
	"$F" dead "$S.dlq" "$S" 1000 dk "rejected: weight over limit" rejected
check "1000 dead letters produced to $S.dlq" [ $? = 0 ]
"$D" dlq list --topic "$S.dlq" --limit 5 >"$out" 2>"$err"
check "dlq list prints the reasons" [ "$(grep -c 'rejected  *'"$S"'\[[0-9]\]@[0-9]* key=dk-[0-9]*: rejected: weight over limit' "$out")" = 5 ]
check "dlq list --filter-error selects by reason (111 of 1000 contain 'limit 7')" \
	[ "$("$D" dlq list --json --topic "$S.dlq" --filter-error 'limit 7' | wc -l)" = 111 ]
"$D" dlq show --topic "$S.dlq" --offset 0:0 >"$out" 2>"$err"
check "dlq show decodes the value and prints the source" \
	bash -c "grep -q '^value (dronepipe.package.CreatePackage)' '$out' && grep -q '^source: *$S \[[0-9]\] offset 10' '$out'"

# --- redrive 1,000, killed with -9 half-way, re-run: each exactly once ---
count() { "$D" topics --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["topics"][0]["records"])'; }
"$D" dlq redrive --topic "$S.dlq" --batch 25 --rate 150 >"$logdir/ops-redrive1.log" 2>&1 &
rd=$!
wait_until 40 bash -c "[ \$($(declare -f count); D='$D' count '$S') -ge 400 ]"
{
	kill -9 $rd
	wait $rd
} 2>/dev/null
n1=$(count "$S")
check "redrive killed half-way ($n1 of 1000 on $S)" [ "$n1" -ge 400 -a "$n1" -lt 1000 ]
"$D" dlq redrive --topic "$S.dlq" --json >"$out" 2>"$logdir/ops-redrive2.log"
check "re-run of the redrive exits 0" [ $? = 0 ]
"$D" tail "$S" --from-beginning --timeout-ms 10000 >"$logdir/ops-target.jsonl"
check "target holds each of the 1000 records exactly once, with key, headers and marker" \
	python3 - "$logdir/ops-target.jsonl" "$S.dlq" <<'PY'
import json, sys, collections
rs = [json.loads(l) for l in open(sys.argv[1])]
src = collections.Counter(r["headers"]["dp_redriven_from"] for r in rs)
keys = collections.Counter(r["key"] for r in rs)
assert len(rs) == 1000, len(rs)
assert len(src) == 1000 and len(keys) == 1000, (len(src), len(keys))
for r in rs:
    h = r["headers"]
    assert h["dp_redriven_from"].startswith(sys.argv[2] + ":"), h
    assert int(h["dp_redriven_at"]) > 0 and h["event_type"] == "CreatePackage", h
    assert not any(k in h for k in ("dp_error", "dp_source_topic", "dp_group")), h
    assert r["value"]["deliveryId"] == r["key"] and h["event_id"] == r["value"]["eventId"]
PY
"$D" dlq redrive --topic "$S.dlq" --json >"$out" 2>/dev/null
check "a third run redrives nothing" [ "$(json_get "$(cat "$out")" 'd["redriven"]')" = 0 ]

# --- crash between the acknowledgements and the commit (fault injection) ---
C=$T.crash
"$F" create "$C" 3 && "$F" create "$C.dlq" 3 && "$F" dead "$C.dlq" "$C" 100 ck "schema: bad" schema
"$D" dlq redrive --topic "$C.dlq" --batch 20 --fault-exit-after-ack 2 >/dev/null 2>&1
check "fault injection: redrive exits after 2 acknowledged batches, before the commit" [ $? = 9 ]
"$D" dlq redrive --topic "$C.dlq" --batch 20 --json >"$out" 2>/dev/null
check "the re-run finds the uncommitted batch on the target and skips it (20)" \
	[ "$(json_get "$(cat "$out")" '(d["already_redriven"], d["redriven"])')" = "(20, 60)" ]
check "target holds each of the 100 exactly once" \
	[ "$("$D" tail "$C" --from-beginning --timeout-ms 10000 | python3 -c 'import json,sys; s=[json.loads(l)["headers"]["dp_redriven_from"] for l in sys.stdin]; print(len(s), len(set(s)))')" = "100 100" ]

# --- tail over a garbage record ---
U=$T.tail
"$F" create "$U" 1 && "$F" valid "$U" 2 a && "$F" raw "$U" garbage "not avro at all" && "$F" valid "$U" 2 b
"$D" tail "$U" --from-beginning --timeout-ms 5000 >"$out" 2>"$err"
check "tail prints the garbage record as undecodable and continues" python3 - "$out" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
assert len(rs) == 5, len(rs)
assert rs[2]["key"] == "garbage" and rs[2]["error"].startswith("undecodable"), rs[2]
assert bytes.fromhex(rs[2]["value_hex"]) == b"not avro at all"
assert [r["key"] for r in rs[3:]] == ["b-0", "b-1"] and all("value" in r for r in rs[3:])
PY

finish test_ops
