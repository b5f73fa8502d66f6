"""Generation: the plan's chunks through the batched sampler, PNGs written atomically, finished chunks skipped.

A chunk is regenerated whole when any of its images is missing (an interrupted run) or damaged, so every image comes
from the same batch composition as in an uninterrupted run and is bit-identical to it. PNG encoding runs on worker
threads so the sampler does not wait for the disk.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from rich.progress import Progress

from bench.stages.items import BenchItems, ItemTensors
from bench.stages.methods import Method
from bench.stages.plan import Task
from bench.suite import Suite
from localctrl.common.files import png_problem, read_rgb, write_failure, write_png
from localctrl.local_controlnet import inpaint_condition
from localctrl.models.stacks import Stack
from localctrl.sampling import Request, sample, to_uint8


def request(task: Task, item: ItemTensors, k: int, method: Method, reference: Task | None = None) -> Request:
    """Task's request; its item's tensors are row k of `item`. How a local method keeps control in the mask
    (MethodSpec.local): its features masked (the ControlNet's own "zero-condition" mode zeroes the condition itself),
    the adapter's condition zeroed outside and its features unmasked, its latents blended with text only's, or (an
    inpainting ControlNet) `reference`'s image repainted inside the mask, latents blended with its trajectory outside."""
    prompt, spec = item.prompts[k], method.spec
    if not method.controlled:
        return Request(prompt, task.seed)
    mask = item.masks[k] if spec.mask_at_inference else None
    condition, blend = item.conditions[k], None
    if mask is not None and spec.local in ("blend-latents", "inpaint"):
        mask, blend = None, mask
    if spec.local == "inpaint":
        condition = inpaint_condition(read_rgb(reference.path).float() / 255, blend)
    if mask is not None and spec.local == "zero-condition" and method.controlnet is None:
        condition, mask = condition * mask, None
    control = method.controlnet.controlnet if method.controlnet is not None else method.adapter.adapter
    wanted = control.config.conditioning_channels if method.controlnet is not None else control.config.in_channels
    condition = condition.expand(wanted, -1, -1) if condition.shape[0] == 1 else condition  # edges as an RGB image
    if method.controlnet is not None:
        return Request(prompt, task.seed, condition, mask, controlnet=method.controlnet, scale=spec.scale, blend=blend)
    return Request(prompt, task.seed, condition, mask, adapter=method.adapter, scale=spec.scale, blend=blend)


def generate(stack: Stack, suite: Suite, items: BenchItems, methods: dict[str, Method], chunks: list[list[Task]],
             problems: dict[str, str], progress: Progress | None = None, tasks: list[Task] | None = None,
             say: Callable[[str], None] = print) -> int:
    """Generate every chunk with an image in `problems` (plan.image_problems), writing those; returns how many.
    `tasks` (the whole plan) names the reference images inpainting methods repaint; a chunk whose references are not
    there yet (another shard's) is left for a later run."""
    reference = suite.metrics.preservation.reference_method if suite.metrics.preservation else None
    references = {(t.item, t.seed): t for t in tasks or [] if t.method == reference}
    todo = [chunk for chunk in chunks if any(task.key in problems for task in chunk)]
    bar = progress.add_task("generate", total=sum(len(chunk) for chunk in todo)) if progress else None
    pending: dict = {}  # write → its path, until checked
    written, waiting = 0, 0
    with ThreadPoolExecutor(max_workers=2) as writers:  # on an error, leaving the block still finishes queued writes
        for chunk in todo:
            inpainting = methods[chunk[0].method].spec.local == "inpaint"  # one method kind a chunk (plan.chunks)
            if inpainting:
                check_writes(pending)  # the reference images it repaints are on disk, whole
                if any(png_problem(references[task.item, task.seed].path) for task in chunk):
                    waiting += len(chunk)  # another shard's references: a later run makes these
                    continue
            item = items.load_for([task.item for task in chunk])  # only this chunk's items are in memory
            requests = [request(task, item, k, methods[task.method], references.get((task.item, task.seed)))
                        for k, task in enumerate(chunk)]
            settings = suite.sampler_for(methods[chunk[0].method].spec).model_copy(update={"batch_size": len(chunk)})  # one scheduler a chunk
            images = to_uint8(sample(stack, requests, None, settings, progress=False))
            # written atomically: a killed run leaves no torn PNG, the file is either complete or absent
            writes = {writers.submit(write_png, task.path, image.permute(1, 2, 0).numpy()): task.path
                      for task, image in zip(chunk, images) if task.key in problems}
            pending |= writes
            written += len(writes)
            check_writes(pending, finished_only=True)  # a full disk stops the run at the next chunk, not after all of them
            if progress:
                progress.advance(bar, len(chunk))
    check_writes(pending)
    if waiting:
        say(f"{waiting} inpainting image(s) wait for reference images another shard makes: a run without --shard makes them")
    return written


def check_writes(pending: dict, finished_only: bool = False) -> None:
    """Raise the first failed PNG write as the user's error naming the file; checked writes leave `pending`."""
    for future in [future for future in pending if future.done() or not finished_only]:
        path = pending.pop(future)
        if (error := future.exception()) is not None:
            if isinstance(error, OSError):
                raise write_failure(path, error)
            raise error
