#!/usr/bin/env python3
"""break.py FILE FIND REPLACE — replaces the first FIND in FILE (for tests/deploy/selftest.sh).
"\\n" in FIND/REPLACE is a newline, "\\x7c" a "|". Exits 1 when FIND is not in FILE."""
import sys

path, find, repl = sys.argv[1:4]
unesc = lambda s: s.replace("\\n", "\n").replace("\\x7c", "|")
find, repl = unesc(find), unesc(repl)
with open(path) as f:
    text = f.read()
if find not in text:
    sys.exit(f"break.py: text not found in {path}: {find!r}")
with open(path, "w") as f:
    f.write(text.replace(find, repl, 1))
