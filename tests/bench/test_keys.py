"""The cache keys a rerun's equality rests on: what must change each key, and what must not."""

from pathlib import Path

import pytest
import torch

from bench.keys import StackedHash, items_key, json_hash, method_key, sampler_key, score_key, task_key, tensor_hash, training_key
from bench.stages.methods import Method
from bench.stages.plan import plan_tasks
from bench.stages.train import training_config
from bench.suite import MethodSpec, load_suite
from localctrl.config import SamplerSettings


def test_hashes_are_canonical():
    assert json_hash({"a": 1, "b": [1.5, "x"]}) == json_hash({"b": [1.5, "x"], "a": 1})
    assert tensor_hash(torch.zeros(2, 2)) != tensor_hash(torch.zeros(4))  # same bytes, other shape
    assert tensor_hash(torch.zeros(2, dtype=torch.float32)) != tensor_hash(torch.zeros(1, dtype=torch.float64))


def test_the_shipped_shapes_suite_keys_its_trained_adapters_as_the_cache_on_disk_does():
    # Known answers: the adapter folders `localctrl bench --suite shapes-quick` trained and reused before and after
    # the settings became one config system. A change here retrains every cached adapter of every user.
    suite = load_suite("shapes-quick")
    folders = {name: training_config(suite, name, Path("cache")).out.name for name in ("global", "masked", "masked-z0")}
    # (Changed on purpose twice: by issue 14's lr 3e-3, before it 6f125ea64fd2f92e, baa9ccf0654708a0, 5aeba6c9c721bee4;
    # then by validation at the suite's conditioning scale, before it d50bf694fb7a59c3, ad8e3934747112d6, 3e41e68406ec79a4.)
    assert folders == {"global": "d21ba8c97e8afc85", "masked": "ee807df1e6acdd0a", "masked-z0": "a872fd3bd4d3365c"}
    assert training_key(suite.train_config("global")) == training_key(suite.train_config("global-masked"))  # one adapter, two uses


def test_training_key_ignores_only_where_the_adapter_is_written():
    config = load_suite("smoke").train_config("trained-masked-z0")
    assert training_key(config) == training_key(config.model_copy(update={"out": Path("elsewhere")}))
    assert training_key(config) != training_key(config.model_copy(update={"steps": config.steps + 1}))
    assert training_key(config) != training_key(config.model_copy(update={"z0": config.z0.model_copy(update={"weight": 0.5})}))


def test_training_key_ignores_how_batches_are_made_but_not_the_latent_cache():
    config = load_suite("smoke").train_config("trained-masked-z0")
    data = lambda **change: config.model_copy(update={"data": config.data.model_copy(update=change)})  # noqa: E731
    assert training_key(config) == training_key(data(workers=2)) == training_key(data(prefetch=8)) == \
        training_key(data(cache_dir=Path("elsewhere")))  # (the pinned folder names above: older keys are unchanged)
    assert training_key(config) != training_key(data(cache_latents=True))  # trains the same only up to float rounding


def test_sampler_key_has_the_image_settings_and_not_the_batch_size():
    base = SamplerSettings(steps=20, guidance=4.0, batch_size=40)
    assert sampler_key(base) == {"scheduler": "ddim", "steps": 20, "guidance": 4.0, "precision": "fp32"}  # as cached images have it
    assert sampler_key(base) == sampler_key(base.model_copy(update={"batch_size": 2}))
    for change in ({"steps": 21}, {"guidance": 7.5}, {"scheduler": "euler"}, {"precision": "bf16"}, {"negative_prompt": "blurry"},
                   {"conditioning_factor": 0.5}, {"channels_last": True}, {"compile": True}, {"scale": 0.8}):
        assert sampler_key(base) != sampler_key(base.model_copy(update=change)), change


def test_method_key_is_the_weights_and_their_use_not_the_label():
    key = method_key("adapter", True, 1.0, "area", "abc", None)
    for changed in (method_key("adapter", False, 1.0, "area", "abc", None), method_key("adapter", True, 0.5, "area", "abc", None),
                    method_key("adapter", True, 1.0, "max", "abc", None), method_key("adapter", True, 1.0, "area", "abd", None),
                    method_key("controlnet", True, 1.0, "area", "abc", "mask-residuals")):
        assert changed != key


def test_task_key_changes_with_each_input():
    parts = dict(base="b", method="m", prompt="a red circle", seed=0, sampler={"steps": 20}, condition="c", mask="k")
    key = task_key(**parts)
    for name, value in (("base", "b2"), ("method", "m2"), ("prompt", "a blue circle"), ("seed", 1), ("sampler", {"steps": 21}),
                        ("condition", "c2"), ("mask", None)):
        assert task_key(**parts | {name: value}) != key, name


class Controlled(Method):
    @property
    def controlled(self) -> bool:
        return True


def test_plan_keys_leave_out_what_a_method_does_not_use(tmp_path):
    from types import SimpleNamespace

    suite = load_suite("smoke")
    specs = {"text": MethodSpec(kind="text-only"), "global": MethodSpec(kind="adapter", weights="random", mask_at_inference=False),
             "local": MethodSpec(kind="adapter", weights="random")}
    planned = {name: Controlled(name, spec, None, name) if spec.kind == "adapter" else Method(name, spec, None, name)
               for name, spec in specs.items()}

    def keys(conditions: list[str], masks: list[str]) -> dict[tuple[str, int], str]:
        items = SimpleNamespace(ids=["a", "b"], prompts=["p", "q"], condition_keys=conditions, mask_keys=masks)  # what the plan reads
        return {(t.method, t.item): t.key for t in plan_tasks(suite, items, planned, "base", tmp_path)}

    before, after, only_mask = keys(["c0", "c1"], ["m0", "m1"]), keys(["C0", "C1"], ["M0", "M1"]), keys(["c0", "c1"], ["M0", "M1"])
    for item in range(2):
        assert before["text", item] == after["text", item]  # text only: neither enters its key
        assert before["global", item] != after["global", item] and before["local", item] != after["local", item]
        assert only_mask["global", item] == before["global", item], "the mask enters only a method that masks"
        assert only_mask["local", item] != before["local", item]
    assert len(set(before.values())) == len(before), "every image has its own key"


def test_score_key_covers_images_reference_items_metrics_and_networks():
    parts = dict(method="m", tasks=["t1", "t2"], reference=["r1", "r2"], metrics={"edges": {"tolerance": 1}}, items="i",
                 fid_reference="f", networks=["shapes-net", None, None])
    key = score_key(**parts)
    for name, value in (("tasks", ["t1", "t3"]), ("reference", []), ("metrics", {"edges": {"tolerance": 2}}), ("items", "j"),
                        ("fid_reference", None), ("networks", ["inception", None, None]), ("method", "n")):
        assert score_key(**parts | {name: value}) != key, name
    assert score_key(**parts) == key


@pytest.mark.parametrize("field", ["masks", "reference_edges", "semantic", "depth"])
def test_items_key_covers_masks_and_ground_truth(field):
    parts = dict(ids=["a"], masks="m", reference_edges="e", semantic="s", depth="d")
    assert items_key(**parts) != items_key(**parts | {field: "other"})
    assert items_key(**parts) != items_key(**parts | {"ids": ["b"]})


def test_a_hash_computed_chunk_by_chunk_equals_the_hash_of_the_whole_tensor():
    # Streaming the items keeps the score keys (and so the cached scores) of the suite held in memory at once.
    whole = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    streamed = StackedHash(10)
    for start in (0, 3, 7):
        streamed.update(whole[start : {0: 3, 3: 7, 7: 10}[start]])
    assert streamed.hexdigest() == tensor_hash(whole)


def test_chunked_items_have_the_tensors_their_keys_were_made_from():
    from bench.stages.items import load_items

    items = load_items(load_suite("shapes"), 64, limit=70)  # two chunks of the keying pass
    for rows in ([69, 3, 3], [64, 0]):
        part = items.load_for(rows)
        assert [tensor_hash(c) for c in part.conditions] == [items.condition_keys[r] for r in rows]
        assert [tensor_hash(m) for m in part.masks] == [items.mask_keys[r] for r in rows]
        assert part.prompts == [items.prompts[r] for r in rows]


def test_a_shapes_world_adapter_is_retrained_when_its_conditions_ground_truth_changes(monkeypatch):
    import bench.keys

    depth = load_suite("shapes-depth-quick").train_config("global")
    canny = load_suite("shapes-quick").train_config("global")
    before = training_key(depth), training_key(canny)
    monkeypatch.setitem(bench.keys.GROUND_TRUTH_VERSIONS, "depth", 99)
    assert training_key(depth) != before[0] and training_key(canny) == before[1]


def test_a_shapes_world_seg_adapter_is_retrained_when_the_segmenter_that_validates_it_changes(monkeypatch):
    import bench.keys

    seg = load_suite("shapes-seg-quick").train_config("global")
    canny = load_suite("shapes-quick").train_config("global")
    before = training_key(seg), training_key(canny)
    monkeypatch.setattr(bench.keys, "SEGMENTER_VERSION", 99)
    assert training_key(seg) != before[0] and training_key(canny) == before[1]
