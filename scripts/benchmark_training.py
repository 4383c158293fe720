"""Benchmark ``musicbox train`` against the quality targets, with time and peak memory per stage.

Optionally generates, lands and builds a dataset first, then runs
``musicbox train all`` in a subprocess while sampling the resident memory
(RSS) of its whole process tree, Python driver and JVM together. The
summary compares the run's ``metrics.json`` with the targets:

- the best churn model's test ROC AUC within 0.02 of the oracle AUC;
- ALS NDCG@k at least 1.5 times the popularity baseline's;
- ALS test RMSE at least 15% below the user-mean baseline's.

Example (default scale, the generator's 59,000 users)::

    .venv/bin/python scripts/benchmark_training.py --data-dir /tmp/bench-data --prepare

The summary is printed as Markdown and written as JSON beside the run's report.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

PROJECT_DIR = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent
SAMPLE_SECONDS = 0.5

logger = logging.getLogger("benchmark_training")


@dataclass
class MemorySampler:
    """Samples the RSS of a process and all its descendants in a background thread."""

    pid: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _tree_rss(self) -> int:
        try:
            root = psutil.Process(self.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for process in processes:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self._tree_rss()))
            self._stop.wait(SAMPLE_SECONDS)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def peak(self, start: float | None = None, end: float | None = None) -> int:
        """Return the highest sample between ``start`` and ``end`` (Unix times), in bytes."""
        values = [
            rss
            for moment, rss in self.samples
            if (start is None or moment >= start) and (end is None or moment <= end)
        ]
        return max(values, default=0)


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, MemorySampler]:
    """Run ``command`` from the project root; return its wall time and memory samples."""
    logger.info("running %s", " ".join(command))
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env)
    sampler = MemorySampler(process.pid)
    thread = sampler.start()
    code = process.wait()
    sampler.stop()
    thread.join()
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{' '.join(command)} exited with {code}")
    logger.info("finished in %.1f s, peak RSS %.2f GB", seconds, sampler.peak() / 1e9)
    return seconds, sampler


def prepare(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """Generate, land and build the marts in the data folder; return the timings."""
    raw = args.data_dir / "raw"
    steps = {
        "generate": [
            str(BIN_DIR / "musicbox"),
            "generate",
            "--users",
            str(args.users),
            "--seed",
            str(args.seed),
            "--out",
            str(raw),
            "--overwrite",
        ],
        "land": [str(BIN_DIR / "musicbox"), "land", str(raw)],
        "dbt_build": [str(BIN_DIR / "dbt"), "build", "--profiles-dir", str(PROJECT_DIR)],
    }
    result = {}
    for name, command in steps.items():
        seconds, sampler = run_measured(command, env)
        result[name] = {"seconds": seconds, "peak_rss_bytes": sampler.peak()}
    return result


def summarise(metrics: dict[str, Any], sampler: MemorySampler) -> dict[str, Any]:
    """Compare the run's metrics with the targets and attach peak memory per stage."""
    summary: dict[str, Any] = {"run_id": metrics["run_id"], "checks": {}, "stages": {}}
    for stage, timing in metrics["timings"].items():
        summary["stages"][stage] = {
            "seconds": timing["seconds"],
            "peak_rss_bytes": sampler.peak(timing["started_at"], timing["ended_at"]),
        }
    churn = metrics.get("churn")
    if churn:
        best = churn["best_model"]
        candidates = dict(churn["models"])
        if churn.get("ensemble"):
            candidates["mean_of_models"] = churn["ensemble"]
        best_auc = candidates[best]["test"]["roc_auc"]
        oracle = (churn.get("oracle") or {}).get("roc_auc")
        observed = ((churn.get("oracle") or {}).get("observed") or {}).get("roc_auc")
        summary["churn"] = {
            "users": churn["data"]["users"],
            "churn_rate": churn["data"]["churn_rate"],
            "test_auc": {name: model["test"]["roc_auc"] for name, model in candidates.items()},
            "cv_auc": {name: model["cv"]["best_cv_auc"] for name, model in candidates.items()},
            "best_model": best,
            "oracle_auc": oracle,
            "observed_oracle_auc": observed,
        }
        summary["checks"]["best_auc_within_0.02_of_oracle"] = (
            None if oracle is None or best_auc is None else oracle - best_auc <= 0.02
        )
    rec = metrics.get("recommender")
    if rec:
        held_out = rec["ranking"]["held_out"]
        als_ndcg, popularity_ndcg = (
            held_out["als_implicit"]["ndcg_at_k"],
            held_out["popularity"]["ndcg_at_k"],
        )
        rmse = rec["rmse"]
        summary["recommender"] = {
            "pairs": rec["data"]["pairs"],
            "rmse": rmse,
            "ndcg_at_k": {name: values["ndcg_at_k"] for name, values in held_out.items()},
            "k": rec["ranking"]["k"],
        }
        summary["checks"]["als_ndcg_at_least_1.5x_popularity"] = (
            None if not popularity_ndcg else als_ndcg >= 1.5 * popularity_ndcg
        )
        summary["checks"]["als_rmse_at_least_15pct_below_user_mean"] = (
            None if rmse["user_mean"] is None else rmse["als"] <= 0.85 * rmse["user_mean"]
        )
        summary["rating_model"] = {
            "chosen_params": rec["rating_model"]["chosen_params"],
            "biased": rec["rating_model"].get("biased"),
            "plain_params": rec["rating_model"].get("plain_params"),
        }
    return summary


def markdown(summary: dict[str, Any]) -> str:
    """Render the summary as Markdown tables."""
    lines = [f"Run `{summary['run_id']}`.", ""]
    if "churn" in summary:
        churn = summary["churn"]
        lines += ["| churn model | test ROC AUC |", "| --- | --- |"]
        for name, auc in churn["test_auc"].items():
            lines.append(f"| {name} | {auc:.4f} |")
        if churn["oracle_auc"] is not None:
            lines.append(f"| oracle (ground truth) | {churn['oracle_auc']:.4f} |")
        if churn.get("observed_oracle_auc") is not None:
            lines.append(f"| oracle from the observed days | {churn['observed_oracle_auc']:.4f} |")
        lines.append("")
    if "recommender" in summary:
        rec = summary["recommender"]
        lines += [f"| recommender | test RMSE | NDCG@{rec['k']} |", "| --- | --- | --- |"]
        lines.append(
            f"| explicit ALS | {rec['rmse']['als']:.4f} | {rec['ndcg_at_k']['als_explicit']:.4f} |"
        )
        if rec["rmse"].get("als_plain") is not None:
            lines.append(f"| plain ALS (no bias terms) | {rec['rmse']['als_plain']:.4f} | |")
        lines.append(f"| implicit ALS | | {rec['ndcg_at_k']['als_implicit']:.4f} |")
        lines.append(f"| user mean | {rec['rmse']['user_mean']:.4f} | |")
        lines.append(f"| global mean | {rec['rmse']['global_mean']:.4f} | |")
        lines.append(f"| popularity | | {rec['ndcg_at_k']['popularity']:.4f} |")
        if "oracle" in rec["ndcg_at_k"]:
            lines.append(f"| oracle top songs | | {rec['ndcg_at_k']['oracle']:.4f} |")
        lines.append("")
    lines += ["| check | result |", "| --- | --- |"]
    for name, passed in summary["checks"].items():
        lines.append(f"| {name} | {'n/a' if passed is None else ('pass' if passed else 'fail')} |")
    lines += ["", "| stage | seconds | peak RSS (GB) |", "| --- | --- | --- |"]
    for stage, values in summary["stages"].items():
        lines.append(
            f"| {stage} | {values['seconds']:.1f} | {values['peak_rss_bytes'] / 1e9:.2f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="absolute MUSICBOX_DATA_DIR for the run"
    )
    parser.add_argument(
        "--prepare", action="store_true", help="generate, land and dbt build the data first"
    )
    parser.add_argument("--users", type=int, default=59_000, help="users to generate")
    parser.add_argument("--seed", type=int, default=1, help="generator seed")
    parser.add_argument("--run-id", default="benchmark", help="training run id")
    parser.add_argument(
        "--train-args",
        default="",
        help="extra arguments for `musicbox train all`, such as '--grid quick'",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    env = dict(os.environ, MUSICBOX_DATA_DIR=str(args.data_dir))
    env.setdefault("MUSICBOX_PROJECT_DIR", str(PROJECT_DIR))
    reports = args.data_dir / "reports"
    preparation = prepare(args, env) if args.prepare else {}
    command = [
        str(BIN_DIR / "musicbox"),
        "train",
        "all",
        "--run-id",
        args.run_id,
        "--reports-dir",
        str(reports),
        *args.train_args.split(),
    ]
    seconds, sampler = run_measured(command, env)
    run_dir = reports / args.run_id
    metrics = json.loads((run_dir / "metrics.json").read_text())
    summary = summarise(metrics, sampler)
    summary["train_command"] = " ".join(command)
    summary["train_seconds"] = seconds
    summary["train_peak_rss_bytes"] = sampler.peak()
    summary["preparation"] = preparation
    summary["machine"] = {"cpus": os.cpu_count(), "memory_bytes": psutil.virtual_memory().total}
    (run_dir / "benchmark.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
