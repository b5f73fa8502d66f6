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
    for index, item_id in enumerate(items.ids):
        for seed in suite.seeds:
            for name, method in methods.items():
                controlled = method.controlled
                key = task_key(base_key, method.key, items.prompts[index], seed, samplers[name],
                               condition_keys[index] if controlled else None,
                               mask_keys[index] if controlled and method.spec.mask_at_inference else None)
                tasks.append(Task(name, index, seed, key, out / "images" / name / f"{item_id}-s{seed}-{key[:12]}.png"))
    return tasks


def image_problems(tasks: list[Task]) -> dict[str, str]:
    """Task key → what is wrong with its image: "missing", or damaged (truncated, changed bytes); intact ones left out."""
    return {task.key: problem for task in tasks if (problem := png_problem(task.path)) is not None}


def chunks(tasks: list[Task], size: int, methods: dict[str, Method] | None = None) -> list[list[Task]]:
    """Sampler batches of at most `size` tasks in plan order; methods with a scheduler of their own
    (MethodSpec.scheduler) are batched apart, each scheduler's tasks in the order they first appear."""
    groups: dict[str | None, list[Task]] = {}
    for task in tasks:
        groups.setdefault(methods[task.method].spec.scheduler if methods else None, []).append(task)
    return [group[start : start + size] for group in groups.values() for start in range(0, len(group), size)]


def shard_of(groups: list, shard: tuple[int, int] | None) -> list:
    """Shard i of n (0-based) takes every n-th chunk: whole chunks, so images match an unsharded run bit for bit."""
    if shard is None:
        return groups
    index, count = shard
    return groups[index::count]
