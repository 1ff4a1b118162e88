#!/usr/bin/env bash
# Builds and runs the libFuzzer targets (tests/fuzz/fuzz_<name>.c), each for DP_FUZZ_SECONDS
# (default 20) on a copy of its seed corpus tests/fuzz/corpus/<name>/ kept in the git-ignored
# tests/fuzz/corpus-out/<name>/ (new inputs found there survive between runs). A crash, leak or
# sanitizer report fails the target; its input is saved as tests/fuzz/corpus-out/<name>-crash-*.
# Prints one closing line "fuzz: N passed, M failed" and exits non-zero when a target failed.
# Usage (from anywhere): scripts/fuzz.sh [name...]   (no names: every target in the table)
set -u
cd "$(dirname "$0")/.." || exit 1

seconds=${DP_FUZZ_SECONDS:-20}
cc=${DP_FUZZ_CC:-clang}
out=build/fuzz
corpus_out=tests/fuzz/corpus-out
# shellcheck disable=SC2054 # the commas belong to -fsanitize=
flags=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Ipipeline)

# One line per target: name, include folders, sources (besides tests/fuzz/fuzz_<name>.c), libs.
targets=(
	"validate|-Iproducers/ingress|producers/ingress/validate.c pipeline/area.c pipeline/cfg.c pipeline/geo.c pipeline/timefmt.c pipeline/mem.c pipeline/err.c pipeline/text.c|-ljansson -lm"
	"http|-Ipipeline|pipeline/http_route.c pipeline/jsonw.c pipeline/text.c pipeline/mem.c|-ljansson -lm"
	"auth||pipeline/auth.c pipeline/auth_jwt.c pipeline/mem.c pipeline/log.c pipeline/text.c pipeline/cfg.c pipeline/err.c|-ljwt -lgnutls -ljansson -lm -lpthread"
	"avro|-Ibuild/gen -Itests|pipeline/avro.c pipeline/avro_view.c pipeline/avro_walk.c pipeline/avro_canon.c pipeline/jsonw.c pipeline/text.c pipeline/mem.c build/gen/schemas.c tests/oracle/avro_oracle.c|-lavro -ljansson -lm -lpthread"
)

wanted=("$@")
pass=0
fail=0
failed=()
mkdir -p "$out" "$corpus_out"
for entry in "${targets[@]}"; do
	IFS='|' read -r name includes sources libs <<<"$entry"
	if [ ${#wanted[@]} -gt 0 ] && [[ " ${wanted[*]} " != *" $name "* ]]; then
		continue
	fi
	bin=$out/fuzz_$name
	echo "fuzz: building $name"
	# shellcheck disable=SC2086 # word splitting of the table's lists is intended
	if ! "$cc" "${flags[@]}" $includes "tests/fuzz/fuzz_$name.c" $sources $libs -o "$bin"; then
		echo "fuzz: $name: build failed"
		fail=$((fail + 1))
		failed+=("$name (build)")
		continue
	fi
	work=$corpus_out/$name
	mkdir -p "$work"
	cp -n tests/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
	echo "fuzz: running $name for ${seconds}s on $work"
	log=$out/fuzz_$name.log
	"$bin" -max_total_time="$seconds" -max_len=70000 -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$corpus_out/$name-crash-" "$work" >"$log" 2>&1
	rc=$?
	grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)' "$log" || true
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
	else
		tail -n 40 "$log"
		echo "fuzz: $name failed (exit $rc); log $log"
		fail=$((fail + 1))
		failed+=("$name")
	fi
done
[ ${#failed[@]} -eq 0 ] || printf 'FAILED: %s\n' "${failed[@]}"
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
