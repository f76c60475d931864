#!/usr/bin/env python3
"""Reads meson's testlog.json of each build dir and prints the one closing
line CI reads: "N passed, N failed". Exit status 1 if anything failed or
nothing ran."""
import json
import os
import sys

passed = failed = skipped = 0
for build in sys.argv[1:]:
    path = os.path.join(build, "meson-logs", "testlog.json")
    if not os.path.exists(path):
        print(f"{build}: no test log", file=sys.stderr)
        failed += 1
        continue
    for line in open(path):
        result = json.loads(line)["result"]
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
            print(f"FAILED: {json.loads(line)['name']} ({result})", file=sys.stderr)
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed or passed == 0 else 0)
