"""`localctrl perf`: both presets' code paths at tiny sizes on CPU, and the FLOP counts behind MFU.

Speed is measured and reported by the command, never asserted here.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from bench.perf.flops import EXTRA_FORMULAS, count_flops, mfu
from bench.perf.presets import PerfOptions, run_perf
from localctrl.local_adapter import LocalAdapter
from localctrl.models.adapters import build_adapter
from localctrl.models.stacks import load_stack


def test_flop_count_known_answers():
    linear = torch.nn.Linear(5, 7)
    assert count_flops(linear, torch.randn(3, 5)) == 2 * 5 * 7 * 3
    q, k, v = torch.randn(2, 4, 10, 8), torch.randn(2, 4, 12, 8), torch.randn(2, 4, 12, 8)
    # Q·Kᵀ and P·V: two matmuls of 2·q·k·d each, per batch and head (torch lacks this formula for CPU SDPA)
    assert count_flops(F.scaled_dot_product_attention, q, k, v) == 2 * (2 * 2 * 4 * 10 * 12 * 8)


@pytest.fixture(scope="module")
def gpu_quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("perf") / "gpu.json"
    result, table = run_perf(PerfOptions(preset="gpu", base="tiny", device="cpu", quick=True, out=out))
    return result, table, out


def test_gpu_preset_on_the_tiny_stack_writes_the_expected_json(gpu_quick):
    result, table, out = gpu_quick
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["matmul"]["flops_per_s"] > 0 and tuple(result["options"]["batches"]) == (1, 2)
    rows = {(row["sampler"], row["variant"], row["batch"]) for row in result["sampling"]}
    assert rows == {(sampler, variant, batch) for batch in (1, 2) for sampler, variant in
                    [("diffusers", "stock"), ("localctrl", "SDPA"), ("localctrl", "SDPA + channels_last")]}
    assert all(row["mfu"] > 0 and row["images_per_s"] > 0 for row in result["sampling"])
    training = result["training"]
    assert training["batch"] == 4 and training["gradient_checkpointing"] and training["frozen_dtype"] == "bfloat16"
    assert training["steps_per_s"] > 0 and training["peak_memory_mb"] > 0
    assert "vs_diffusers_same_batch" in result["goals"] and not result["skipped"]
    assert any(line.startswith("training: batch 4") for line in table.splitlines()) and "MFU" in table
    (section,) = result["input_pipeline"]  # at the GPU's precision: bf16 frozen modules, checkpointing
    assert section["frozen_dtype"] == "bfloat16" and section["gradient_checkpointing"] and "training input pipeline" in table


def test_gpu_preset_measures_an_sdxl_stack_after_the_sd1_one(gpu_quick):
    result, table, _ = gpu_quick
    sdxl = result["sdxl"]
    assert sdxl["base"] == "tiny-xl-random(seed=0)" and "text_encoder_2" in sdxl["parameters"]
    rows = {(row["sampler"], row["variant"], row["batch"]) for row in sdxl["sampling"]}
    assert rows == {(sampler, variant, batch) for batch in (1, 2) for sampler, variant in [("diffusers", "stock"), ("localctrl", "SDPA")]}
    assert all(row["mfu"] > 0 for row in sdxl["sampling"]) and sdxl["training"]["steps_per_s"] > 0 and not sdxl["skipped"]
    assert sdxl["flops"]["2"]["unet_call"] > 0 and "tiny-xl-random(seed=0), 64²" in table


def test_gpu_preset_mfu_comes_from_flop_counter_mode_on_one_unet_call(gpu_quick):
    result = gpu_quick[0]
    batch, steps = 2, result["options"]["steps"]
    stack = load_stack("tiny", dtype=torch.bfloat16)
    adapter = LocalAdapter(build_adapter(stack, "full", in_channels=1, seed=0)).to(dtype=torch.bfloat16)
    with torch.no_grad():
        features = [torch.cat([f] * 2) for f in adapter(torch.zeros(batch, 1, 64, 64, dtype=torch.bfloat16))]
        latents, text = torch.zeros(2 * batch, 4, 16, 16, dtype=torch.bfloat16), torch.zeros(2 * batch, 77, 32, dtype=torch.bfloat16)
        with FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS) as counter:
            stack.unet(latents, torch.tensor(500), text, down_intrablock_additional_residuals=list(features))  # the UNet pops the list
        with FlopCounterMode(display=False) as without_cpu_sdpa:
            stack.unet(latents, torch.tensor(500), text, down_intrablock_additional_residuals=list(features))
    flops = result["flops"][str(batch)]
    assert flops["unet_call"] == counter.get_total_flops() > without_cpu_sdpa.get_total_flops()  # attention counted on CPU too
    assert flops["unet_rows"] == 2 * batch and flops["adapter"] > 0 and flops["vae_decode"] > 0
    row = next(r for r in result["sampling"] if r["batch"] == batch and r["variant"] == "SDPA")
    expected = (row["images"] // batch) * (steps * flops["unet_call"] + flops["adapter"])
    assert row["model_flops"] == expected
    assert row["mfu"] == pytest.approx(mfu(expected, row["seconds"], result["matmul"]["flops_per_s"]))


def fake_reruns(suite: str, **repeats) -> dict:
    return {"suite": suite, "first_s": 10.0, "rerun_s": 1.0, "rerun_spread": 0.02, "rerun_fraction": 0.1, "speedup": 10.0,
            "recheck_s": 5.0, "recheck_spread": 0.03, "report_s": 2.0, "report_spread": 0.01, "rerun_imports": ["torch", "mlflow"],
            "report_imports": ["mlflow"]}


def test_only_the_reruns_write_their_own_json_saying_when_and_on_which_commit(tmp_path, monkeypatch):
    import bench.perf.reruns
    from localctrl.common.tracking import git_commit

    monkeypatch.setattr(bench.perf.reruns, "whole_process_reruns", fake_reruns)
    result, table = run_perf(PerfOptions(only="reruns", rerun_suite="shapes-quick", out=tmp_path / "reruns.json"))
    assert json.loads((tmp_path / "reruns.json").read_text()) == result and result["cached_rerun"]["suite"] == "shapes-quick"
    assert result["commit"] == git_commit() and result["started_at"].endswith("+00:00")
    assert result["goals"] == {}  # the 25% floor is the smoke suite's
    assert table.startswith("bench shapes-quick, whole processes: first run 10.0 s") and "with --recheck 5.00 ±3% s" in table


def test_cpu_preset_table_and_json_carry_the_ratios(tmp_path, monkeypatch):
    import bench.perf.reruns

    # The whole-process reruns take minutes (their import list is tested in tests/reports); here only their report.
    monkeypatch.setattr(bench.perf.reruns, "whole_process_reruns", fake_reruns)
    result, table = run_perf(PerfOptions(preset="cpu", quick=True, out=tmp_path / "cpu.json"))
    assert json.loads((tmp_path / "cpu.json").read_text())["ratios"] == result["ratios"]
    for name in ("fp32, batch 1", "fp32, batch 2", "bf16 autocast, batch 2"):
        assert set(result["ratios"][name]) == {"vs_per_image", "vs_same_batch"}
    assert {row["precision"] for row in result["sampling"]} == {"fp32", "bf16 autocast"}
    assert any("random weights" in row["metric"] and "CLIP" in row["metric"] for row in result["scoring"])
    assert all(row["images_per_s"] > 0 for row in result["scoring"])
    assert result["training"]["steps_per_s"] > 0 and result["training"]["peak_memory_mb"] > 0
    assert [section["base"] for section in result["input_pipeline"]] == ["tiny-random(seed=0)"]  # --quick: tiny only
    assert set(result["goals"]) == {"sampler_vs_per_image_loop", "sampler_vs_same_batch", "smoke_rerun_vs_first"}  # no sd15 512²
    assert "ours ÷ it" in table and "one image a call" in table and "fully cached rerun 1.00 ±2% s" in table
    assert "with --recheck 5.00 ±3% s, then report 2.00 ±1% s" in table and "imported by the cached rerun: torch, mlflow; by report: mlflow" in table
    # --quick says what its numbers are for, and judges no goal
    assert "not for reading" in table and all(goal["met"] is None for goal in result["goals"].values())
    goals = [line for line in table.splitlines() if line.startswith("goal ")]
    assert len(goals) == 3 and all(line.endswith("not judged (--quick)") for line in goals)


def test_only_the_input_pipeline_runs_three_variants_on_prepared_photos_and_writes_its_own_json(tmp_path, monkeypatch):
    from cli import app

    monkeypatch.chdir(tmp_path)
    outcome = CliRunner().invoke(app, ["perf", "--only", "input-pipeline", "--quick"])
    assert outcome.exit_code == 0, outcome.output
    result = json.loads((tmp_path / "localctrl-runs/perf/cpu-input-pipeline.json").read_text())
    assert "sampling" not in result and result["only"] == "input-pipeline"
    (section,) = result["input_pipeline"]
    rows = {row["variant"]: row for row in section["rows"]}
    assert [(row["workers"], row["latent_cache"]) for row in rows.values()] == [(0, False), (2, False), (2, True)]
    assert all(row["steps_per_s"] > 0 and len(row["step_seconds_all"]) == 2 for row in rows.values())
    assert rows["workers 2 + latent cache"]["cache_build_s"] > 0 and rows["workers 2"]["cache_build_s"] is None
    assert all(set(row["phase_seconds"]) == {"data", "latents", "text", "loss", "backward + AdamW"} for row in rows.values())
    ratio, today = section["ratios"]["workers 2 + latent cache"], rows["today's loop (workers 0, no cache)"]
    # timed in the same rounds: the ratio is the rounds' median ratio, its spread theirs
    rounds = [a / b for a, b in zip(today["step_seconds_all"], rows["workers 2 + latent cache"]["step_seconds_all"])]
    assert ratio["per_round"] == pytest.approx(rounds) and ratio["value"] == pytest.approx(sum(rounds) / 2)
    assert ratio["spread"] == pytest.approx(abs(rounds[0] - rounds[1]) / (sum(rounds) / 2))
    assert "÷ today's loop" in outcome.output and "latent cache built once" in outcome.output and "not for reading" in outcome.output


def test_a_timing_repeats_until_its_spread_is_small_or_its_repeats_run_out():
    from bench.perf.timing import measure

    def clock_of(durations):  # a fake clock that advances by each run's duration
        now, calls = [0.0], iter(durations)

        def clock():
            return now[0]

        def run():
            now[0] += next(calls)
        return clock, run

    clock, run = clock_of([9.0, 1.0, 1.5, 1.0, 1.01, 1.0])  # a slow warm-up, a noisy repeat, then steady ones
    timing = measure(run, clock=clock, min_repeats=3, max_repeats=5)
    assert timing.seconds == pytest.approx((1.0, 1.5, 1.0, 1.01, 1.0))  # the warm-up (9 s) is not among them
    assert timing.median == 1.0 and timing.min == 1.0 and timing.spread == pytest.approx(0.5)  # still noisy: ran out
    clock, run = clock_of([5.0, 2.0, 2.02, 2.01])
    steady = measure(run, clock=clock, min_repeats=3)
    assert len(steady.seconds) == 3 and steady.spread == pytest.approx(0.02 / 2.01)  # (max − min) / median
    clock, run = clock_of([1.0] + [30.0] * 5)
    assert len(measure(run, clock=clock, min_repeats=3, budget_s=20.0).seconds) == 2  # the budget stops it after two


@pytest.mark.parametrize("value, spread, floor, verdict", [(1.5, 0.1, 1.3, True), (1.2, 0.05, 1.3, False),
                                                           (1.35, 0.1, 1.3, None), (0.05, 4.0, 0.95, None)])
def test_a_goal_is_judged_only_when_its_spread_is_smaller_than_its_distance_to_the_floor(value, spread, floor, verdict):
    """The last case is the nonsense of issue 18 (0.05 from two noisy images): undecided, not "NOT met"."""
    from bench.perf.timing import goal_lines, judge

    goal = judge(value, spread, floor=floor)
    assert goal["met"] is verdict
    line = goal_lines({"g": goal})[0]
    assert ("undecided" in line) == (verdict is None) and ("NOT met" in line) == (verdict is False)


def test_cli_refuses_an_unknown_preset():
    from cli import app

    outcome = CliRunner().invoke(app, ["perf", "--preset", "tpu"])
    assert outcome.exit_code == 2 and "'tpu' is not one of 'cpu', 'gpu'" in outcome.output
