"""Run every benchmark (each in its own process) and print their results as one table.

    .venv/bin/python benchmarks/run_all.py            # the full run (about 10 minutes on 2 cores)
    .venv/bin/python benchmarks/run_all.py --quick    # a short run (under 2 minutes)
    .venv/bin/python benchmarks/run_all.py --only Q1 Q5 --markdown results.md

`./scripts/bench` installs the comparison libraries, then runs this. Each script's own output
(absolute numbers, details) streams as it runs; the combined table, with the machine described,
comes last, and `--markdown` also writes it (with the details) to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import Row, machine, table, wait_until_quiet

HERE = Path(__file__).resolve().parent
SCRIPTS = {
    "Q1": "bench_overhead.py",
    "Q2": "bench_decode.py",
    "Q3": "bench_throughput.py",
    "Q4": "bench_memory.py",
    "Q5": "bench_pacing.py",
    "Q6": "bench_httpx.py",
    "Q7": "bench_uvloop.py",
    "Q8": "bench_failures.py",
    "Q9": "bench_priority.py",
}


def main() -> int:
    """Run the scripts, gather their rows, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (under 2 minutes)")
    parser.add_argument("--only", nargs="*", choices=sorted(SCRIPTS), help="questions to run")
    parser.add_argument("--markdown", type=Path, help="also write the results here")
    args = parser.parse_args()

    waited = asyncio.run(wait_until_quiet(0.0 if args.quick else 30.0, sample=1.0))
    if waited >= 30.0:
        print("warning: the machine is busy (another process uses the CPU): numbers will be noisy")
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for question in args.only or list(SCRIPTS):
            script = SCRIPTS[question]
            out = Path(tmp) / f"{question}.json"
            command = [sys.executable, str(HERE / script), "--json", str(out)]
            if args.quick:
                command.append("--quick")
            print(f"\n==== {question}: {script}", flush=True)
            began = time.monotonic()
            code = subprocess.call(command)
            spent = time.monotonic() - began
            if code != 0 or not out.exists():
                failed.append(f"{question} ({script}) exited with {code}")
                continue
            result = json.loads(out.read_text())
            result["seconds"] = spent
            results.append(result)
    rows = [Row(**row) for result in results for row in result["rows"]]
    described = machine()
    for result in results:  # the pinning the scripts reported
        described.update({k: v for k, v in result["machine"].items() if k in ("client", "server")})
    lines = [
        f"# Benchmark results ({'quick' if args.quick else 'full'} run, "
        f"{time.monotonic() - started:.0f} s)",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in described.items()),
        "",
        table(rows),
    ]
    for result in results:
        for note in result["notes"]:
            lines.append(f"- {result['title'].split()[0]}: {note}")
    for problem in failed:
        lines.append(f"- FAILED: {problem}")
    print("\n" + "\n".join(lines))
    if args.markdown is not None:
        more = []
        for result in results:
            more += ["", f"## {result['title']} ({result['seconds']:.0f} s)", ""]
            more += result["details"]
        args.markdown.write_text("\n".join(lines + more) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
