"""Issue 4's experiment: four training variants on the shapes world, each scored like validation, beside the base.

    .venv/bin/python scripts/shapes_variants.py [--steps 300] [--out localctrl-runs/variants]

Variants: global (no masks), masked, masked + z0 sobel λ=1e-3, masked + z0 sobel λ=1e-2; all on shapes-base
with a canny condition. Prints each one's validation in-mask edge F1 and out-of-mask edge density, and the
same measurements for the base model without an adapter, plus the wall time.
"""

import argparse
import time

import mlflow

from localctrl.data.conditions import canny
from localctrl.validation import edge_scores
from localctrl.sampling import Request, SamplerSettings, sample
from localctrl.models.stacks import load_stack
from localctrl.train import train
from localctrl.config import load_train_config
from localctrl.data.examples import ExampleSet

VARIANTS = {
    "global": ["masked=false"],
    "masked": ["z0.enabled=false"],
    "masked + z0 (λ 1e-3)": ["z0.weight=1e-3"],
    "masked + z0 (λ 1e-2)": ["z0.weight=1e-2"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", default="localctrl-runs/variants")
    args = parser.parse_args()
    common = ["base=shapes-base", "condition=canny", f"steps={args.steps}", f"validate_every={args.steps // 3}",
              f"optim.lr={args.lr}", "data.validation_items=32", "validation_steps=20"]
    rows, started = {}, time.perf_counter()
    for name, extra in VARIANTS.items():
        folder = name.replace(" ", "").replace("(", "-").replace(")", "").replace("+", "-").replace("λ", "l")
        tic = time.perf_counter()
        result = train(load_train_config(overrides=[*common, *extra, f"out={args.out}/{folder}"]), resume=False)
        metrics = mlflow.get_run(result.run_id).data.metrics
        rows[name] = (metrics["val_edge_f1_in"], metrics["val_edge_density_out"], result.best_metric, time.perf_counter() - tic)

    config = load_train_config(overrides=common)
    stack = load_stack("shapes-base")
    validation = ExampleSet(config.data, config.condition, stack.image_size, "val", limit=config.data.validation_items)
    batch = validation.validation_batch(config.seed, config.masks, True)
    requests = [Request(caption, config.seed + k) for k, caption in enumerate(batch.captions)]
    images = sample(stack, requests, None, SamplerSettings(steps=config.validation_steps, guidance=4.0), progress=False)
    detected = canny(images)
    base_in = edge_scores(detected, batch.reference_edges, batch.masks).f1.mean().item()
    base_out = edge_scores(detected, batch.reference_edges, 1 - batch.masks).density.mean().item()

    print(f"\n{'variant':<24}{'edge F1 in (last)':>18}{'edge F1 in (best)':>18}{'edge density out':>18}{'minutes':>9}")
    print(f"{'base, no adapter':<24}{base_in:>18.3f}{'':>18}{base_out:>18.3f}")
    for name, (f1_last, density, f1_best, seconds) in rows.items():
        print(f"{name:<24}{f1_last:>18.3f}{f1_best:>18.3f}{density:>18.3f}{seconds / 60:>9.1f}")
    print(f"total {(time.perf_counter() - started) / 60:.1f} min, {args.steps} steps each, lr {args.lr}")


if __name__ == "__main__":
    main()
