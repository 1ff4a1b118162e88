#!/usr/bin/env bash
# Runs unit-test binaries, each in turn, and prints one closing line "N passed, N failed".
# cmocka prints its own per-binary summary; a binary that crashes counts as failed.
set -u
build=$1
shift
pass=0
fail=0
failed=()
for t in "$@"; do
	if "$t"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed+=("$t")
	fi
done
echo "unit ($build): $pass binaries passed, $fail failed"
[ ${#failed[@]} -eq 0 ] || printf 'FAILED: %s\n' "${failed[@]}"
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
