"""Time ``dbt build`` against the floor of reading every landed line once.

The floor is one Spark job, in a fresh process like dbt's, that reads the
raw text of every landed line and counts the lines: no build can do less.
The same run also builds the golden fixture (about 30 users) in a data dir
of its own: that build does all of dbt's per-node work on almost no data, so
it measures the fixed cost that any input pays. All three are measured in
the same run, so their ratios hold on a noisy machine. Peak memory is the
largest resident set size of the process tree, sampled every 0.2 s.

Usage::

    .venv/bin/python scripts/benchmark_dbt.py --data-dir /tmp/bench --users 59000

With ``--raw DIR`` the archives in DIR are landed instead of generated ones.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

PROJECT_DIR = Path(__file__).resolve().parent.parent
GOLDEN_RAW = PROJECT_DIR / "tests" / "fixtures" / "golden-small" / "raw"
BIN_DIR = Path(sys.executable).parent

FLOOR_JOB = """
import sys
from python_ml.spark import get_spark

spark = get_spark("floor", launched_by_submit=False)
landing = sys.argv[1]
total = 0
for folder in ("play_logs", "download_logs", "search_logs"):
    frame = spark.read.parquet(f"{landing}/{folder}")
    total += frame.selectExpr("count(raw_line) as lines").first()["lines"]
print(total)
spark.stop()
"""


def measure(
    command: list[str], env: dict[str, str], log_path: Path | None = None
) -> dict[str, float | str]:
    """Run a command; return its wall time, peak tree RSS and the tail of its output.

    The whole output is written to ``log_path`` when one is given.
    """
    peak = 0
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    parent = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(child.memory_info().rss for child in tree))
        except psutil.Error:
            pass
        time.sleep(0.2)
    reader.join()
    elapsed = time.monotonic() - started
    if log_path is not None:
        log_path.write_text("".join(output), encoding="utf-8")
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{''.join(output[-40:])}")
    return {"seconds": elapsed, "peak_rss_mib": peak / 2**20, "tail": "".join(output[-3:])}


def node_times(run_results: Path) -> dict[str, object]:
    """Summarise dbt's run_results.json: time per kind of node and the slowest nodes.

    A node's time is its execution time as dbt reports it. With several
    threads, nodes overlap, and a node may wait for Spark while another runs.
    """
    results = json.loads(run_results.read_text(encoding="utf-8"))["results"]
    per_kind: dict[str, dict[str, float]] = {}
    for result in results:
        kind = result["unique_id"].split(".")[0]
        entry = per_kind.setdefault(kind, {"nodes": 0, "seconds": 0.0})
        entry["nodes"] += 1
        entry["seconds"] += result["execution_time"]
    slowest = sorted(results, key=lambda result: result["execution_time"], reverse=True)[:12]
    return {
        "per_kind": per_kind,
        "slowest": [
            (result["unique_id"].split(".", 2)[-1], result["execution_time"]) for result in slowest
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="MUSICBOX_DATA_DIR to use")
    parser.add_argument("--users", type=int, default=59_000, help="users to generate")
    parser.add_argument("--seed", type=int, default=1, help="generator seed")
    parser.add_argument("--raw", type=Path, help="land these archives instead of generating")
    parser.add_argument("--output", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    data_dir = args.data_dir.resolve()
    env = dict(os.environ, MUSICBOX_DATA_DIR=str(data_dir), MUSICBOX_PROJECT_DIR=str(PROJECT_DIR))
    env["DBT_PROFILES_DIR"] = str(PROJECT_DIR)
    figures: dict[str, object] = {"data_dir": str(data_dir)}
    raw = args.raw.resolve() if args.raw else data_dir / "raw"
    if not args.raw:
        generate = [str(BIN_DIR / "musicbox"), "generate", "--users", str(args.users)]
        generate += ["--seed", str(args.seed), "--out", str(raw), "--overwrite"]
        figures["generate"] = measure(generate, env)
    figures["land"] = measure([str(BIN_DIR / "musicbox"), "land", str(raw)], env)

    landing = data_dir / "landing"
    floor = measure([sys.executable, "-c", FLOOR_JOB, str(landing)], env)
    figures["floor"] = floor
    figures["landed_lines"] = int(floor["tail"].strip().splitlines()[-1])
    build_log = data_dir / "dbt_build.log"
    build = [str(BIN_DIR / "dbt"), "build", "--target-path", str(data_dir / "target")]
    figures["dbt_build"] = measure(build, env, build_log)
    figures["nodes"] = node_times(data_dir / "target" / "run_results.json")

    # The fixed cost: the same build on the golden fixture, in a data dir of its own.
    fixed_dir = data_dir / "fixed-cost"
    shutil.rmtree(fixed_dir, ignore_errors=True)
    fixed_env = dict(env, MUSICBOX_DATA_DIR=str(fixed_dir))
    measure([str(BIN_DIR / "musicbox"), "land", str(GOLDEN_RAW)], fixed_env)
    fixed_build = [str(BIN_DIR / "dbt"), "build", "--target-path", str(fixed_dir / "target")]
    figures["fixed_cost_build"] = measure(fixed_build, fixed_env, fixed_dir / "dbt_build.log")

    figures["build_to_floor_ratio"] = figures["dbt_build"]["seconds"] / floor["seconds"]
    figures["fixed_cost_to_floor_ratio"] = figures["fixed_cost_build"]["seconds"] / floor["seconds"]

    for stage in ("generate", "land", "floor", "dbt_build", "fixed_cost_build"):
        if stage in figures:
            result = figures[stage]
            print(f"{stage:16} {result['seconds']:8.1f} s  peak {result['peak_rss_mib']:8.0f} MiB")
    print(f"landed lines {figures['landed_lines']:,}")
    print(f"dbt build / floor = {figures['build_to_floor_ratio']:.2f}")
    print(f"golden-fixture build / floor = {figures['fixed_cost_to_floor_ratio']:.2f}")
    for kind, entry in figures["nodes"]["per_kind"].items():
        print(f"  {entry['nodes']:4} {kind} nodes, {entry['seconds']:8.1f} s in all")
    for name, seconds in figures["nodes"]["slowest"]:
        print(f"  {seconds:8.1f} s  {name}")
    if args.output:
        args.output.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
