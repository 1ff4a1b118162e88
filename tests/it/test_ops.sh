#!/usr/bin/env bash
# Integration test of the ops CLI (`dronepipe topics|replay|dlq|tail`) against the real broker
# (scripts/test-it.sh provides it). Topics are created per run (ops.it.<run>.*) by the helper
# build/tests/it/ops_feed, which also produces Avro events, dead letters with their headers and
# garbage records. Covers: --help and bad arguments, an unreachable broker; topics with a group's
# lag; replay --dry-run (plan printed, nothing changed), applied --to-earliest, refusal naming the
# members, --wait; poison records dead-lettered by dronepipe-package and shown by dlq show; dlq
# list/show/filter; redrive of 1,000 records killed (-9) half-way and re-run -> each exactly once;
# a crash between the acknowledgements and the commit -> no duplicate; tail over a garbage record;
# redrive only into the pipeline (a non-pipeline DLQ is refused; dead letters whose
# dp_source_topic names any other topic are skipped and reported, never produced; --dry-run
# changes nothing); hostile text by class (invalid UTF-8, control characters, NUL, huge) in
# keys, headers, dp_error and client ids: the text output is safe on a terminal, --json parses.
# Redrives go into pipeline topics the other integration tests leave alone until test_ops runs
# (dronedelivery.package.events, .drone.events and .drone.commands, and their .dlq).
# Under `make it-san` every program here is the ASan+UBSan build; their sanitizer reports go to
# $logdir/ops-sanitizer.<pid> and fail this test (also where a check reads only stdout).
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
san_log=$logdir/ops-sanitizer
rm -f "$san_log".*
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$san_log:exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$san_log:halt_on_error=1:print_stacktrace=1"
if nm "$D" 2>/dev/null | grep __asan_init >/dev/null; then
	echo "# $D is the ASan+UBSan build"
fi

# term_safe FILE -> ok when a terminal can show FILE as it is: UTF-8, no control character but
# newlines, no C1 control, no invisible/bidi format character (Unicode category Cf).
term_safe() {
	python3 - "$1" <<'PY'
import sys, unicodedata
t = open(sys.argv[1], "rb").read().decode("utf-8")
bad = [c for c in t if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f or unicodedata.category(c) == "Cf"]
assert not bad, [hex(ord(c)) for c in bad[:10]]
PY
}
# json_lines FILE -> ok when every line of FILE is a JSON document (strict: UTF-8, no raw control
# character in a string).
json_lines() {
	python3 -c 'import json,sys; ls=open(sys.argv[1],"rb").read().decode("utf-8").splitlines(); assert ls; [json.loads(l) for l in ls]' "$1"
}
# count TOPIC -> records in TOPIC (sum over partitions of end - start)
count() { "$D" topics --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["topics"][0]["records"])'; }
# committed_topics GROUP -> how many topics GROUP committed offsets on
committed_topics() { "$D" topics --json --group "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["groups"][0]["topics"]))'; }

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
S=dronedelivery.package.events
check "precondition: $S.dlq is empty (no other test dead-lettered there yet)" [ "$(count "$S.dlq")" = 0 ]
S0=$(count "$S")
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
"$D" dlq redrive --topic "$S.dlq" --batch 25 --rate 150 >"$logdir/ops-redrive1.log" 2>&1 &
rd=$!
wait_until 40 bash -c "[ \$(( \$($(declare -f count); D='$D' count '$S') - $S0 )) -ge 400 ]"
{
	kill -9 $rd
	wait $rd
} 2>/dev/null
n1=$(($(count "$S") - S0))
check "redrive killed half-way ($n1 of 1000 on $S)" [ "$n1" -ge 400 -a "$n1" -lt 1000 ]
"$D" dlq redrive --topic "$S.dlq" --json >"$out" 2>"$logdir/ops-redrive2.log"
check "re-run of the redrive exits 0" [ $? = 0 ]
"$D" tail "$S" --from-beginning --timeout-ms 10000 | grep '"dp_redriven_from":"'"$S.dlq:" >"$logdir/ops-target.jsonl"
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
# (other suites may have dead-lettered on $C.dlq before: this run's letters carry a reason of
# their own, and the redrive selects them by it)
C=dronedelivery.drone.events
cmk=ops-fault-$$-$(date +%s%N)
# the group of this filter first walks past the letters already there (none is selected)
"$D" dlq redrive --topic "$C.dlq" --filter-error "$cmk" >/dev/null 2>&1
check "a redrive whose filter selects nothing exits 0" [ $? = 0 ]
"$F" dead "$C.dlq" "$C" 100 ck "schema: bad $cmk" schema
"$D" dlq redrive --topic "$C.dlq" --filter-error "$cmk" --batch 20 --fault-exit-after-ack 2 >/dev/null 2>&1
check "fault injection: redrive exits after 2 acknowledged batches, before the commit" [ $? = 9 ]
"$D" dlq redrive --topic "$C.dlq" --filter-error "$cmk" --batch 20 --json >"$out" 2>/dev/null
check "the re-run finds the uncommitted batch on the target and skips it (20)" \
	[ "$(json_get "$(cat "$out")" '(d["already_redriven"], d["redriven"])')" = "(20, 60)" ]
check "target holds each of the 100 exactly once" \
	[ "$("$D" tail "$C" --from-beginning --timeout-ms 10000 | python3 -c 'import json,sys; s=[h["dp_redriven_from"] for h in (json.loads(l)["headers"] for l in sys.stdin) if "dp_redriven_from" in h]; print(len(s), len(set(s)))')" = "100 100" ]

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

# --- redrive writes only into the pipeline ---
X=$T.x
"$F" create "$X" 1 && "$F" create "$X.dlq" 1 && "$F" dead "$X.dlq" "$X" 5 xk "rejected: x" rejected
check "5 dead letters in a DLQ outside the pipeline ($X.dlq)" [ $? = 0 ]
for dry in "" --dry-run; do
	"$D" dlq redrive --topic "$X.dlq" $dry >"$out" 2>"$err"
	rc=$?
	check "redrive $dry of a DLQ outside the pipeline -> exit 1 (got $rc)" [ $rc = 1 ]
	check "  ... saying why and naming the allowed DLQs" \
		grep -q "$X.dlq is not a dead-letter topic of the pipeline: redrive writes only into the pipeline's own topics.*dronedelivery.package.commands.dlq" "$err"
done
check "  ... and nothing reached $X" [ "$(count "$X")" = 0 ]
check "  ... and nothing was committed for its redrive group" [ "$(committed_topics "dronepipe-redrive-$X.dlq")" = 0 ]
"$D" dlq redrive --topic dronedelivery.workflow.state.dlq >"$out" 2>"$err"
check "redrive into the saga changelog (dronedelivery.workflow.state.dlq) -> exit 1" [ $? = 1 ]
"$D" dlq redrive --topic dronedelivery.package.commands >"$out" 2>"$err"
check "redrive of a topic that is not a DLQ -> exit 1 naming *.dlq" grep -q 'is not a dead-letter topic (\*.dlq)' "$err"

# --- dead letters whose dp_source_topic names another topic: skipped, reported, never sent ---
H=dronedelivery.drone.commands
since=$(($(date +%s%3N) - 1000))
bs=bs-$run
"$F" create "ops.it.$bs.evil" 1 && "$F" badsource "$H.dlq" "$H" "$bs"
check "13 dead letters in $H.dlq: 11 whose dp_source_topic is not $H, 2 whose is" [ $? = 0 ]
BG=dronepipe-redrive-$H.dlq-f-$bs
H0=$(count "$H")
"$D" dlq redrive --topic "$H.dlq" --filter-error "$bs" --dry-run >"$out" 2>"$err"
check "redrive --dry-run exits 0" [ $? = 0 ]
check "  ... its summary says what would be sent where and what is skipped, and that nothing changed" \
	grep -q "^dry run: redrive $H.dlq -> $H (group $BG): [0-9]* examined, 2 would be redriven, 0 already redriven by an interrupted run, [0-9]* not selected by the filter, 11 skipped (9: dp_source_topic names another topic, 2: no dp_source_topic); nothing was produced or committed$" "$out"
check "  ... lists each skipped record with its reason" [ "$(grep -c '^skipped [0-9]*:[0-9]*: ' "$out")" = 11 ]
check "  ... naming the topic its header asks for" grep -q "^skipped .*: dp_source_topic names another topic ('dronedelivery.workflow.state')$" "$out"
check "  ... escaping a NUL in that header" grep -qF "('$H\\x00evil')" "$out"
check "  ... and terminal escapes in it" grep -qF "('\\x1b[2J\\x1b[31mred')" "$out"
check "  ... the output is safe on a terminal" term_safe "$out"
"$D" dlq redrive --topic "$H.dlq" --filter-error "$bs" --dry-run --json >"$out" 2>"$err"
check "redrive --dry-run --json: counts per target and each skip with its reason" python3 - "$out" "$H" "ops.it.$bs.evil" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))
h = sys.argv[2]
assert d["dry_run"] is True and d["ok"] is True, d
assert d["target"] == h and d["targets"] == {h: 2}, d
assert (d["redriven"], d["skipped"], d["other_source"], d["no_source"]) == (2, 11, 9, 2), d
reasons = [s["reason"] for s in d["skips"]]
assert reasons.count("other_source_topic") == 9 and reasons.count("no_source_topic") == 2, reasons
srcs = [s.get("source_topic") for s in d["skips"]]
for want in ("dronedelivery.workflow.state", "dronedelivery.package.commands", sys.argv[3],
             "__consumer_offsets", h + "\0evil", h + ".x", h + "\ufffd", "\x1b[2J\x1b[31mred", "a" * 5000):
    assert want in srcs, (want[:40], srcs)
PY
check "  ... the dry runs produced nothing to $H" [ "$(count "$H")" = "$H0" ]
check "  ... and committed nothing in $BG" [ "$(committed_topics "$BG")" = 0 ]
"$D" dlq redrive --topic "$H.dlq" --filter-error "$bs" --json >"$out" 2>"$err"
check "redrive --json exits 0" [ $? = 0 ]
check "  ... redrove 2, skipped 11 with their reasons" \
	[ "$(json_get "$(cat "$out")" '(d["redriven"], d["skipped"], d["other_source"], d["no_source"], len(d["skips"]), d["targets"])')" = "(2, 11, 9, 2, 11, {'$H': 2})" ]
"$D" tail "$H" --from-time "$since" --timeout-ms 5000 >"$logdir/ops-bs-target.jsonl"
check "  ... $H received exactly the 2 whose dp_source_topic is $H" \
	[ "$(grep -o "\"key\":\"$bs-[a-z]*-[0-9]*\"" "$logdir/ops-bs-target.jsonl" | sort | tr '\n' ' ')" = "\"key\":\"$bs-good-0\" \"key\":\"$bs-good-1\" " ]
check "  ... nothing reached the topic a header named (ops.it.$bs.evil)" [ "$(count "ops.it.$bs.evil")" = 0 ]
check "  ... nor the other pipeline topics the headers named" \
	bash -c "! '$D' tail dronedelivery.workflow.state --from-time $since --timeout-ms 3000 | grep -q '$bs' && ! '$D' tail dronedelivery.package.commands --from-time $since --timeout-ms 3000 | grep -q '$bs'"
"$D" dlq redrive --topic "$H.dlq" --filter-error "$bs" --json >"$out" 2>"$err"
check "  ... a re-run finds nothing left (skipped ones are not retried either)" \
	[ "$(json_get "$(cat "$out")" '(d["redriven"], d["skipped"])')" = "(0, 0)" ]
bt=bt-$run
"$F" badsource "$H.dlq" "$H" "$bt"
"$D" dlq redrive --topic "$H.dlq" --filter-error "$bt" >"$out" 2>"$err"
check "redrive (text) reports the skipped ones in its summary line" \
	grep -q "^redrive $H.dlq -> $H (group dronepipe-redrive-$H.dlq-f-$bt): [0-9]* examined, 2 redriven, 0 already redriven by an interrupted run, [0-9]* not selected by the filter, 11 skipped (9: dp_source_topic names another topic, 2: no dp_source_topic)$" "$out"
check "  ... and lists them" [ "$(grep -c '^skipped ' "$out")" = 11 ]
check "  ... safe on a terminal" term_safe "$out"

# --- hostile text by class in dead letters: list, show, tail, redrive ---
hx=hx-$run
since=$(($(date +%s%3N) - 1000))
"$F" hostile "$H.dlq" "$H" "$hx"
check "4 dead letters with hostile key, headers and dp_error (utf8, ctrl, nul, huge)" [ $? = 0 ]
huge_key=$((${#hx} + 6 + 100000))
"$D" dlq list --topic "$H.dlq" --filter-error "$hx" >"$out" 2>"$err"
rc=$?
check "dlq list over hostile text exits 0 (got $rc) with the 4 records" \
	[ $rc = 0 -a "$(grep -c "key=$hx-" "$out")" = 4 ]
check "  ... safe on a terminal (UTF-8, no control or bidi character)" term_safe "$out"
check "  ... control characters escaped (ESC, BEL, CR, LF, BS, DEL, C1 CSI, RLO)" \
	grep -qF "key=$hx-ctrl-\\x1b[2J\\x1b]0;pwned\\x07\\r\\n\\x08\\x7f\\u009b31m\\u202etxt: $hx ctrl: " "$out"
check "  ... invalid UTF-8 as \\xHH, valid UTF-8 kept" \
	grep -qF "key=$hx-utf8-\\xff\\xfe\\xc0\\xaf\\xed\\xa0\\x80 caf"$'\xc3\xa9'" \\xf4\\x90\\x80\\x80 \\xe2\\x82: " "$out"
check "  ... the NUL as \\x00 (not cut there)" grep -qF "key=$hx-nul-before\\x00after: $hx nul: before\\x00after" "$out"
check "  ... the huge key cut and marked with its size" grep -qF "...(truncated, $huge_key bytes)" "$out"
"$D" dlq list --topic "$H.dlq" --filter-error "$hx" --json >"$out" 2>"$err"
check "dlq list --json: every line is JSON, keys exact (key_hex where not UTF-8)" python3 - "$out" "$hx" <<'PY'
import json, sys
hx = sys.argv[2]
rs = [json.loads(l) for l in open(sys.argv[1], "rb").read().decode("utf-8").splitlines()]
by = {r["error"].split(":")[0].split(" ")[1]: r for r in rs}
assert sorted(by) == ["ctrl", "huge", "nul", "utf8"], sorted(by)
assert by["ctrl"]["key"] == hx + "-ctrl-\x1b[2J\x1b]0;pwned\x07\r\n\b\x7f\x9b31m\u202etxt", by["ctrl"]["key"]
assert by["nul"]["key"] == hx + "-nul-before\0after" and by["nul"]["group"] == "before\0after"
utf8 = (hx + "-utf8-").encode() + b"\xff\xfe\xc0\xaf\xed\xa0\x80 caf\xc3\xa9 \xf4\x90\x80\x80 \xe2\x82"
assert bytes.fromhex(by["utf8"]["key_hex"]) == utf8 and "\ufffd" in by["utf8"]["key"]
assert "key_hex" not in by["ctrl"] and "key_hex" not in by["nul"]
assert len(by["huge"]["key"]) == len(hx) + 6 + 100000 and len(by["huge"]["group"]) == 100000
PY
"$D" dlq show --topic "$H.dlq" --filter-error "$hx" >"$out" 2>"$err"
rc=$?
check "dlq show over hostile text exits 0 (got $rc)" [ $rc = 0 ]
check "  ... safe on a terminal" term_safe "$out"
check "  ... header names escaped too" grep -qF ' x-\x1b[1m=named' "$out"
check "  ... the values decoded (4 records)" [ "$(grep -c '^value (dronepipe.package.CreatePackage)' "$out")" = 4 ]
"$D" dlq show --topic "$H.dlq" --filter-error "$hx" --json >"$out" 2>"$err"
check "dlq show --json: valid JSON, invalid header bytes kept in headers_hex" python3 - "$out" "$hx" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1], "rb").read().decode("utf-8").splitlines()]
assert len(rs) == 4
u = [r for r in rs if r["value"]["deliveryId"] == sys.argv[2] + "-utf8"][0]
assert bytes.fromhex(u["headers_hex"]["x-note"]) == b"\xff\xfe\xc0\xaf\xed\xa0\x80 caf\xc3\xa9 \xf4\x90\x80\x80 \xe2\x82"
assert "x-\ufffd\ufffd" in u["headers"], u["headers"].keys()
PY
"$D" dlq redrive --topic "$H.dlq" --filter-error "$hx" --json >"$out" 2>"$err"
check "redrive of the hostile dead letters: 4 redriven, JSON summary valid" \
	[ "$(json_get "$(cat "$out")" '(d["redriven"], d["skipped"])')" = "(4, 0)" ]
"$D" tail "$H" --from-time "$since" --timeout-ms 5000 >"$out" 2>"$err"
check "tail of the target: valid JSON lines, the 4 with their exact keys and headers" python3 - "$out" "$hx" <<'PY'
import json, sys
hx = sys.argv[2]
rs = [json.loads(l) for l in open(sys.argv[1], "rb").read().decode("utf-8").splitlines()]
rs = [r for r in rs if r.get("value", {}).get("deliveryId", "").startswith(hx + "-")]
by = {r["value"]["deliveryId"][len(hx) + 1:]: r for r in rs}
assert sorted(by) == ["ctrl", "huge", "nul", "utf8"], sorted(by)
assert by["ctrl"]["headers"]["x-note"] == "\x1b[2J\x1b]0;pwned\x07\r\n\b\x7f\x9b31m\u202etxt"
assert by["nul"]["headers"]["x-note"] == "before\0after"
assert bytes.fromhex(by["utf8"]["key_hex"]).endswith(b"\xe2\x82")
assert len(by["huge"]["headers"]["x-note"]) == 100000
for r in rs:
    assert r["headers"]["dp_redriven_from"].startswith("dronedelivery.drone.commands.dlq:")
    assert not any(k.startswith("dp_error") for k in r["headers"])
PY

# --- group members with huge, hostile client ids: replay's refusal and topics ---
G2=ops-it-cid-$run
long=$(printf 'A%.0s' {1..1000})
cid1="ops-cid1-"$'\xff\xfe\x1b[2J\x1b]0;t\x07'"$long$long"
cid2="ops-cid2-"$'\xe2\x80\xae\x1b[31m'"$long$long"
kcat -b "$DP_KAFKA_BROKERS" -G "$G2" -X client.id="$cid1" -q "$T" >/dev/null 2>&1 &
m1=$!
kcat -b "$DP_KAFKA_BROKERS" -G "$G2" -X client.id="$cid2" -q "$T" >/dev/null 2>&1 &
m2=$!
children+=($m1 $m2)
members2() { "$D" topics --json --group "$G2" | python3 -c 'import json,sys; d=json.load(sys.stdin)["groups"][0]; print(d["state"], len(d["members"]))'; }
wait_until 60 bash -c "[ \"\$($(declare -f members2); D='$D' G2='$G2' members2)\" = 'Stable 2' ]"
check "2 members with 2,000-byte client ids (invalid UTF-8, escapes) joined $G2" [ "$(members2)" = "Stable 2" ]
"$D" replay --group "$G2" --topic "$T" --to-earliest >"$out" 2>"$err"
rc=$?
check "replay refuses (exit 3, got $rc), no crash" [ $rc = 3 ]
check "  ... the refusal names both members, each id clearly cut" \
	bash -c "grep -q 'refusing to reset group $G2: it has 2 active member(s): ops-cid' '$err' && [ \$(grep -o '\.\.\.(truncated, [0-9]* bytes)' '$err' | wc -l) -ge 2 ]"
check "  ... and is printed whole (its last sentence is there)" grep -q 'Stop them first, or pass --wait to wait until the group is empty$' "$err"
check "  ... escaping what the client ids carry" bash -c "grep -qF '\\x1b[2J\\x1b]0;t\\x07' '$err' && grep -qF '\\u202e\\x1b[31m' '$err'"
check "  ... safe on a terminal" term_safe "$err"
"$D" replay --group "$G2" --topic "$T" --to-earliest --dry-run >"$out" 2>"$err"
rc=$?
check "replay --dry-run with those members: exit 0 (got $rc), with its note" \
	[ $rc = 0 -a "$(grep -c "^note: group $G2 has 2 active member(s)" "$out")" = 1 ]
check "  ... safe on a terminal" term_safe "$out"
"$D" replay --group "$G2" --topic "$T" --to-earliest --dry-run --json >"$out" 2>"$err"
check "replay --dry-run --json: valid JSON with both whole client ids" python3 - "$out" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))
ids = sorted(m["client_id"] for m in d["members"])
assert len(ids) == 2 and ids[0].startswith("ops-cid1-") and ids[1].startswith("ops-cid2-"), ids
assert all(len(i) >= 2000 for i in ids) and "\x1b[2J" in ids[0] and "\u202e" in ids[1]
PY
"$D" topics --group "$G2" >"$out" 2>"$err"
rc=$?
check "topics --group (text) with those members: exit 0 (got $rc)" [ $rc = 0 ]
check "  ... safe on a terminal" term_safe "$out"
"$D" topics --json --group "$G2" >"$out" 2>"$err"
check "topics --json --group: valid JSON" json_lines "$out"
kill $m1 $m2 2>/dev/null
wait $m1 $m2 2>/dev/null

# --- sanitizers (make it-san): no report from anything this test ran ---
reports=$(ls "$san_log".* 2>/dev/null)
check "no ASan/UBSan report from dronepipe, ops_feed or the service" [ -z "$reports" ]
[ -z "$reports" ] || head -n 40 $reports

finish test_ops
