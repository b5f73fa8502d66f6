"""`localctrl bench --num-processes 2`: generation split over two gloo CPU processes, outputs identical to one process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from bench.run import BenchOptions, run_bench
from cli import without_option

REPOSITORY = Path(__file__).parents[2]


def test_without_option_drops_the_option_and_its_value():
    arguments = ["bench", "--limit", "2", "--num-processes", "2", "--suite", "smoke", "--num-processes=3"]
    assert without_option(arguments, "--num-processes") == ["bench", "--limit", "2", "--suite", "smoke"]


def outputs(out: Path) -> dict[str, bytes]:
    """Every PNG, per-sample parquet and aggregate JSON, by path relative to the output folder."""
    files = [*out.glob("images/**/*.png"), *out.glob("scores/*.parquet"), *out.glob("scores/*.json")]
    return {str(path.relative_to(out)): path.read_bytes() for path in sorted(files)}


def test_two_processes_produce_the_same_images_and_scores_as_one(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the launched processes run one thread each: same float reductions
    try:
        single = run_bench("smoke", BenchOptions(out=tmp_path / "one", cache=tmp_path / "cache"))
    finally:
        torch.set_num_threads(threads)
    command = [sys.executable, "-m", "cli", "bench", "--suite", "smoke", "--out", str(tmp_path / "two"), "--num-processes", "2",
               "--cache", str(tmp_path / "cache")]
    launched = subprocess.run(command, cwd=REPOSITORY, env=os.environ | {"OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                              timeout=600)
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert outputs(tmp_path / "two") == outputs(tmp_path / "one") and len(outputs(tmp_path / "one")) == 20 + 10
    summaries = [json.loads(path.read_text()) for path in sorted((tmp_path / "two" / "scores").glob("*.json"))]
    assert sorted(json.dumps(s, sort_keys=True) for s in summaries) == sorted(json.dumps(r, sort_keys=True) for r in single.results.values())
