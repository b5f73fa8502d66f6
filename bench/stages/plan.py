"""The work plan: one task per (item, seed, method), each keyed by everything that determines its image (bench.keys).

The PNG path holds the key, so a changed input regenerates exactly what it changes and a
rerun finds finished images. Tasks are ordered item-major (every method of an item side by side) and cut into
fixed chunks of `batch_size`: a chunk is one batched sampler call mixing methods, and the same chunks are formed
on every run, so an interrupted run regenerates bit-identical images.
"""

from dataclasses import dataclass
from pathlib import Path

from bench.keys import sampler_key, task_key
from bench.stages.items import BenchItems
from bench.stages.methods import Method
from bench.suite import Suite
from localctrl.common.files import png_problem


@dataclass(frozen=True)
class Task:
    method: str
    item: int  # index into BenchItems
    seed: int
    key: str
    path: Path



def plan_tasks(suite: Suite, items: BenchItems, methods: dict[str, Method], base_key: str, out: Path) -> list[Task]:
    tasks = []
    samplers = {name: sampler_key(suite.sampler_for(method.spec)) for name, method in methods.items()}
    condition_keys, mask_keys = items.condition_keys, items.mask_keys
    reference = suite.metrics.preservation.reference_method if suite.metrics.preservation else None
    order = sorted(methods, key=lambda name: methods[name].spec.local == "inpaint")  # keys of the images they repaint first
    for index, item_id in enumerate(items.ids):
        for seed in suite.seeds:
            keys = {}
            for name in order:
                method = methods[name]
                controlled = method.controlled
                # an inpainting method's condition is the reference's image: its key stands for it
                condition = keys.get(reference) if method.spec.local == "inpaint" else condition_keys[index]
                keys[name] = task_key(base_key, method.key, items.prompts[index], seed, samplers[name],
                                      condition if controlled else None,
                                      mask_keys[index] if controlled and method.spec.mask_at_inference else None)
            for name in methods:
                key = keys[name]
                tasks.append(Task(name, index, seed, key, out / "images" / name / f"{item_id}-s{seed}-{key[:12]}.png"))
    return tasks


def image_problems(tasks: list[Task]) -> dict[str, str]:
    """Task key → what is wrong with its image: "missing", or damaged (truncated, changed bytes); intact ones left out."""
    return {task.key: problem for task in tasks if (problem := png_problem(task.path)) is not None}


def chunks(tasks: list[Task], size: int, methods: dict[str, Method] | None = None) -> list[list[Task]]:
    """Sampler batches of at most `size` tasks in plan order; methods with a scheduler or steps of their own
    (MethodSpec.scheduler, .steps) are batched apart, each setting's tasks in the order they first appear, and
    inpainting methods last (they repaint the reference method's images, which must exist by then)."""
    groups: dict[tuple, list[Task]] = {}
    for task in tasks:
        spec = methods[task.method].spec if methods else None
        groups.setdefault((spec.local == "inpaint", spec.scheduler, spec.steps) if spec else (), []).append(task)
    ordered = sorted(groups.items(), key=lambda entry: bool(entry[0] and entry[0][0]))  # stable: inpainting last
    return [group[start : start + size] for _, group in ordered for start in range(0, len(group), size)]


def shard_of(groups: list, shard: tuple[int, int] | None) -> list:
    """Shard i of n (0-based) takes every n-th chunk: whole chunks, so images match an unsharded run bit for bit."""
    if shard is None:
        return groups
    index, count = shard
    return groups[index::count]
