"""Whole-process reruns: `localctrl bench --suite S` as a new process, first in empty folders, then again fully cached
(the finished run's record: no model is loaded), then with `--recheck` (every stage checks its cache), and `localctrl
report` of it; each timed as the user pays it (interpreter start and imports included).

A cached rerun has nothing to compute, so its time is what it imports and reads: the networks' libraries (open_clip,
lpips, torchmetrics, clean-fid) are imported only when a network is built, and `report` imports no torch. Which of the
heavy libraries each process imported is recorded (from `python -X importtime`), so a regression names its cause.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.perf.timing import measure

HEAVY = ("torch", "diffusers", "transformers", "open_clip", "lpips", "torchmetrics", "cleanfid", "torchvision", "kornia", "mlflow",
         "matplotlib", "pandas", "scipy")


def run_command(arguments: list[str], env: dict, cwd: str) -> None:
    done = subprocess.run([sys.executable, "-m", "cli", *arguments], env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"localctrl {' '.join(arguments)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def imported(arguments: list[str], env: dict, cwd: str) -> list[str]:
    """The HEAVY libraries a run of `localctrl ARGUMENTS` imports (one more run, under -X importtime)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "cli", *arguments], env=env, cwd=cwd, capture_output=True,
                          text=True)
    names = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+([\w.]+)$", done.stderr, flags=re.M))
    return [name for name in HEAVY if name in names]


def whole_process_reruns(suite: str = "smoke", **repeats) -> dict:
    """First run and cached reruns of `localctrl bench --suite`, then `localctrl report`, in a throw-away store."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(folder) / 'mlflow.db'}", "MLFLOW_DISABLE_TELEMETRY": "true",
               "HF_HUB_OFFLINE": "1"}
        bench = ["bench", "--suite", suite, "--out", f"{folder}/out", "--cache", f"{folder}/cache"]
        report = ["report", "--suite", suite, "--out", f"{folder}/report", "--no-log"]
        start = time.perf_counter()
        run_command(bench, env, folder)
        first = time.perf_counter() - start
        reruns = measure(lambda: run_command(bench, env, folder), warmup=lambda: None, **repeats)  # the first run warmed up
        # --recheck: the full path (every stage finds its cache), which a changed input also takes
        rechecks = measure(lambda: run_command([*bench, "--recheck"], env, folder), **repeats)
        reports = measure(lambda: run_command(report, env, folder), **repeats)
        return {"suite": suite, "first_s": first, "rerun_s": reruns.median, "rerun_spread": reruns.spread,
                "reruns_s": list(reruns.seconds), "rerun_fraction": reruns.median / first, "speedup": first / reruns.median,
                "recheck_s": rechecks.median, "recheck_spread": rechecks.spread, "rechecks_s": list(rechecks.seconds),
                "report_s": reports.median, "report_spread": reports.spread, "reports_s": list(reports.seconds),
                "rerun_imports": imported(bench, env, folder), "report_imports": imported(report, env, folder),
                "how": "whole processes (python -m cli …), interpreter start and imports included"}
