"""What large run uploads cost the page process that a whole class shares.

    python -m bench.uploads                         # this checkout
    python -m bench.uploads --before /path/to/old   # and an older checkout, in the same run (ratios printed)

For each checkout, a fresh Python process builds one large but valid run file (a real MMoE record whose
snapshots are repeated to 1,000 steps and whose history has 120,000 rows: under, under the 20 MB
upload limit), then loads it `--uploads` times into one browser's locker the way the Inside page does
(`read_records`, then the shelf's `keep`), and prints the process's resident memory after each (after a
garbage collection). The old shelf kept every record as Python objects; the store keeps compressed JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r'''
import gc, json, os, sys, tempfile
sys.path.insert(0, sys.argv[1])
uploads = int(sys.argv[2])
from mtl_core.live import InProcess, Race
from mtl_core.serve.records import dumps, read_records
from mtl_core.settings import knobs
import mtl_core.serve.shelf as shelf_module

def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

race = Race(InProcess(), {**knobs.defaults(), "samples": 2_000, "epochs": 20, "arch": ("MMoE",)})
race.step(50)
(record,) = race.records()
race.close()
steps = list(range(50, 50_001, 50))   # 1,000 snapshots
record["step"] = 60_000
record["diagnostics"] = {name: [{**row, "step": s} for s in steps for row in rows] for name, rows in record["diagnostics"].items()}
record["history"] = [{"arch": "mmoe", "task": f"task {t}", "split": "train", "step": s, "loss": 0.1}
                     for s in range(1, 60_001) for t in range(2)]
text = dumps([record])
try:
    from mtl_core.serve.store import Store
    shelf = shelf_module.Shelf(Store(os.path.join(tempfile.mkdtemp(), "s.sqlite")))
except ImportError:
    shelf = shelf_module.Shelf()
gc.collect()
start = rss()
after = []
for i in range(uploads):
    shelf.keep("t" * 20, read_records(text))
    gc.collect()
    after.append(rss() - start)
print(json.dumps({"file_mb": len(text) / 1e6, "growth_mb": after}))
'''


def measure(root: Path, uploads: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(uploads)], capture_output=True, text=True, cwd=root)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="an older checkout to measure in the same run")
    parser.add_argument("--uploads", type=int, default=3)
    a = parser.parse_args()
    results = {"after": measure(ROOT, a.uploads)}
    if a.before:
        results = {"before": measure(a.before, a.uploads), **results}
    for name, r in results.items():
        print(f"{name:>6}: file {r['file_mb']:.1f} MB; page-process memory growth after each upload (MB): "
              + ", ".join(f"{g:.0f}" for g in r["growth_mb"]))
    if a.before:
        before, after = results["before"]["growth_mb"][-1], results["after"]["growth_mb"][-1]
        print(f"growth after {a.uploads} uploads, after / before: {after / before:.2f}x" if before > 0 else "")


if __name__ == "__main__":
    main()
