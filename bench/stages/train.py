"""The train stage: adapters a suite trains itself (methods with `train`), through `localctrl train`'s own code.

A method's adapter lives in `<cache>/adapters/<hash of its resolved training config>` (bench.keys.training_key),
shared by every suite that asks for the same config; `bench-done.json`, written when training finishes, marks it
reusable, so a second run trains nothing (a killed training resumes from its checkpoint).
"""

import json
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from rich.progress import Progress

from bench.keys import training_key
from bench.suite import Suite
from localctrl.common.files import read_json, write_text
from localctrl.common.locks import locked
from localctrl.config import TrainConfig
from localctrl.errors import InputError

DONE = "bench-done.json"


def training_config(suite: Suite, method: str, cache: Path) -> TrainConfig:
    """The method's training config (bench.suite.Suite.train_config), its output folder named by its key."""
    config = suite.train_config(method)
    return config.model_copy(update={"out": cache / "adapters" / training_key(config)})


def trained_folder(suite: Suite, method: str, cache: Path) -> Path:
    return Path(training_config(suite, method, cache).out)


def needs_training(suite: Suite, cache: Path) -> dict[str, TrainConfig]:
    """Method name → its training config, for the methods whose adapter is not trained yet."""
    configs = {name: training_config(suite, name, cache) for name, spec in suite.methods.items() if spec.train is not None}
    return {name: config for name, config in configs.items() if not (Path(config.out) / DONE).is_file()}


def trainings(to_train: dict[str, TrainConfig]) -> dict[Path, list[str]]:
    """Adapter folder → the methods that use it (e.g. the global adapter's four uses), in suite order."""
    folders: dict[Path, list[str]] = {}
    for name, config in to_train.items():
        folders.setdefault(Path(config.out), []).append(name)
    return folders


def training_run_id(folder: Path) -> str:
    """The MLflow run that trained the adapter in `folder`."""
    return read_json(folder / DONE, "training record")["run_id"]


def train_method(config: TrainConfig, processes: PartialState | None = None, say: Callable[[str], None] = print,
                 progress: Progress | None = None) -> None:
    """Train (or resume) the method's adapter unless another process has meanwhile; with launched processes, DDP at the
    same effective batch. The adapter folder's lock keeps two bench runs sharing the cache from training it twice."""
    from localctrl.train import train

    main = processes is None or processes.is_main_process
    with locked(Path(f"{config.out}.lock"), f"training {config.out}", say) if main else nullcontext():
        needed = not (Path(config.out) / DONE).is_file()
        if processes is not None:
            needed = broadcast_object_list([needed])[0]  # the main process decides, holding the lock, for all
        if not needed:
            return
        count = processes.num_processes if processes is not None else 1
        if count > 1:  # every process trains together: accumulation shrinks so batch × accumulation × processes is unchanged
            accumulation, remainder = divmod(config.optim.grad_accum, count)
            if remainder or not accumulation:
                raise InputError(f"{config.out}: gradient accumulation {config.optim.grad_accum} cannot be split over {count} "
                                 "processes; train it with one process first (the adapter is then reused)")
            config = config.model_copy(update={"optim": config.optim.model_copy(update={"grad_accum": accumulation})})
        result = train(config, progress=progress)
        if result.run_id is not None:  # the main process marks the adapter done
            write_text(Path(config.out) / DONE, json.dumps({"run_id": result.run_id, "steps": result.steps,
                                                            "best": {result.best_metric_name: result.best_metric}},
                                                           indent=2) + "\n")
