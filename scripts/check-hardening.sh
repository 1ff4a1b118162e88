#!/usr/bin/env bash
# Checks that built binaries carry the hardening the Makefile asks for (HARDEN_CFLAGS,
# HARDEN_LDFLAGS), read back from the ELF files with readelf:
#   PIE          ELF type DYN (a position-independent executable, loaded at a random address)
#   full RELRO   a GNU_RELRO segment and BIND_NOW (FLAGS BIND_NOW or FLAGS_1 NOW)
#   canaries     __stack_chk_fail imported (-fstack-protector-strong put canaries in)
#   FORTIFY      at least one glibc __*_chk function imported (-D_FORTIFY_SOURCE=2)
# Usage: scripts/check-hardening.sh [--no-fortify] BINARY...
#   --no-fortify  skip the FORTIFY check (the SAN=1 build: FORTIFY and ASan exclude each other)
# Prints one line per binary and check that fails, then "hardening: N passed, M failed" (one
# binary passes when all its checks do); exit status 1 when any failed or no binary was given.
set -uo pipefail
fortify=1
if [ "${1:-}" = --no-fortify ]; then
	fortify=0
	shift
fi
if ! command -v readelf >/dev/null; then
	echo "hardening: readelf not found (binutils)" >&2
	echo "hardening: 0 passed, 1 failed"
	exit 1
fi
pass=0
fail=0
for b in "$@"; do
	problems=()
	if [ ! -f "$b" ]; then
		problems+=("missing")
	else
		header=$(readelf -h "$b" 2>&1)
		dynamic=$(readelf -d "$b" 2>&1)
		segments=$(readelf -lW "$b" 2>&1)
		# imported symbols: undefined (UND) entries of the dynamic symbol table
		imports=$(readelf --dyn-syms -W "$b" 2>&1 | awk '$7 == "UND" {sub(/@.*/, "", $8); print $8}')
		grep -Eq '^ *Type: +DYN ' <<<"$header" || problems+=("not PIE (ELF type is not DYN: build with -fPIE and link with -pie)")
		grep -q 'GNU_RELRO' <<<"$segments" || problems+=("no GNU_RELRO segment (link with -Wl,-z,relro)")
		grep -Eq '\(FLAGS\) .*BIND_NOW|\(FLAGS_1\) .*NOW' <<<"$dynamic" ||
			problems+=("no BIND_NOW, RELRO is only partial (link with -Wl,-z,now)")
		grep -qx '__stack_chk_fail' <<<"$imports" ||
			problems+=("no __stack_chk_fail import (compile with -fstack-protector-strong)")
		if [ "$fortify" = 1 ]; then
			grep -Eqx '__[a-z0-9_]+_chk' <<<"$(grep -vx '__stack_chk_fail' <<<"$imports")" ||
				problems+=("no __*_chk import (compile with -O2 -D_FORTIFY_SOURCE=2)")
		fi
	fi
	if [ ${#problems[@]} -eq 0 ]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		for p in "${problems[@]}"; do echo "FAIL - $b: $p"; done
	fi
done
[ $# -gt 0 ] || {
	echo "hardening: no binary given" >&2
	fail=1
}
echo "hardening: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
