"""Nothing left behind blocks or corrupts a rerun: damaged cache files are found, named and made again; a run killed
before its params were logged is completed."""

import io
import json
from pathlib import Path

import mlflow
from rich.console import Console
from test_bench_run import NO_TRAINING, suite_file

from bench.run import BenchOptions, run_bench
from localctrl.common.tracking import experiment_id


def bench(suite: str, folder: Path) -> tuple[object, str]:
    said = io.StringIO()
    result = run_bench(suite, BenchOptions(out=folder / "out", cache=folder / "cache"), console=Console(file=said, width=400))
    return result, said.getvalue()


def truncate(path: Path, size: int = 100) -> None:
    path.write_bytes(path.read_bytes()[:size])


def test_truncated_images_detections_and_features_and_edited_scores_are_made_again(tmp_path):
    suite = suite_file(tmp_path, "damaged", methods=NO_TRAINING, data={"source": "shapes", "split": "test", "items": 4},
                       sampler={"scheduler": "ddim", "steps": 2, "guidance": 4.0, "batch_size": 4})
    first, _ = bench(suite, tmp_path)
    out = tmp_path / "out"
    image = sorted((out / "images" / "random-masked").glob("*.png"))[1]
    good_image = image.read_bytes()
    truncate(image)
    detection = sorted((out / "detected" / "canny").glob("*.png"))[0]
    truncate(detection)
    features = next((out / "cache").glob("fid-reference-*.npy"))
    truncate(features, 200)
    summary = next((out / "scores").glob("text-only-*.json"))
    edited = json.loads(summary.read_text()) | {"edge_f1_in": 0.999}
    summary.write_text(json.dumps(edited))

    second, said = bench(suite, tmp_path)
    assert second.counts["generated"] == 1 and second.counts["cached"] == second.counts["images"] - 1
    assert image.read_bytes() == good_image, "regenerated bit-identically"
    for path, action in ((image, "generated again"), (detection, "detected again"), (features, "computed again"),
                         (summary, "scored again")):
        assert f"{path}" in said and action in said, (path, said)
    assert second.results == first.results, "no edited or damaged value reaches the results"
    copied = out / "qualitative" / f"{image.name.split('-s')[0]}-random-masked.png"
    assert copied.read_bytes() == good_image

    third, said = bench(suite, tmp_path)  # everything intact again: nothing redone, nothing said
    assert third.counts["generated"] == 0 and "again" not in said and third.results == first.results


def test_a_damaged_image_without_cached_scores_is_regenerated_not_a_crash(tmp_path):
    suite = suite_file(tmp_path, "rescored", methods=NO_TRAINING, data={"source": "shapes", "split": "test", "items": 2},
                       sampler={"scheduler": "ddim", "steps": 2, "guidance": 4.0, "batch_size": 8})
    first, _ = bench(suite, tmp_path)
    for path in (tmp_path / "out" / "scores").iterdir():
        path.unlink()
    truncate(sorted((tmp_path / "out" / "images" / "text-only").glob("*.png"))[0])
    second, said = bench(suite, tmp_path)
    assert second.counts["generated"] == 1 and "generated again" in said and second.results == first.results


def test_a_bench_whose_parent_run_lost_its_params_reuses_and_completes_it(tmp_path, monkeypatch):

    suite = suite_file(tmp_path, "paramless", methods={"text-only": NO_TRAINING["text-only"]}, metrics={"fid": None, "align_shapes": False,
                       "edges": None, "seg": False, "preservation": None}, data={"source": "shapes", "split": "test", "items": 2},
                       sampler={"scheduler": "ddim", "steps": 2, "guidance": 4.0, "batch_size": 2})
    options = BenchOptions(out=tmp_path / "out", cache=tmp_path / "cache")
    first = run_bench(suite, options)
    tags = mlflow.get_run(first.run_id).data.tags
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")  # a store where that run was killed early
    keep = ("localctrl.bench.key", "localctrl.bench.role", "localctrl.suite")
    with mlflow.start_run(experiment_id=experiment_id("bench"), tags={key: tags[key] for key in keep}) as killed:
        pass
    second = run_bench(suite, options)
    assert second.run_id == killed.info.run_id and mlflow.get_run(killed.info.run_id).data.params


def small_suite(tmp_path: Path, name: str, items: int = 2, batch: int = 2) -> str:
    return suite_file(tmp_path, name, methods=NO_TRAINING, data={"source": "shapes", "split": "test", "items": items},
                      sampler={"scheduler": "ddim", "steps": 2, "guidance": 4.0, "batch_size": batch})


def test_an_unwritable_out_or_an_unreachable_store_fails_before_any_work(tmp_path, monkeypatch, unet_calls):
    import pytest

    from localctrl.errors import InputError, NotAvailableError

    suite = small_suite(tmp_path, "early")
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(InputError, match=r"--out .*a-file/out is not writable"):
        run_bench(suite, BenchOptions(out=tmp_path / "a-file" / "out", cache=tmp_path / "cache"))
    from servers import free_port

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(NotAvailableError, match=r"tracking store http://127.0.0.1:\d+ cannot be reached"):
        run_bench(suite, BenchOptions(out=tmp_path / "out", cache=tmp_path / "cache"))
    assert unet_calls == [] and not list((tmp_path / "out").rglob("*.png")), "nothing generated before the checks"


def test_a_write_that_fails_mid_run_stops_at_that_chunk_and_names_the_file(tmp_path, monkeypatch, unet_calls):
    import errno

    import pytest

    import bench.stages.generate as generate
    from localctrl.errors import InputError

    real = generate.write_png

    def disk_full_after_two(path, array):
        if len(list(path.parent.parent.rglob("*.png"))) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, array)

    monkeypatch.setattr(generate, "write_png", disk_full_after_two)
    suite = small_suite(tmp_path, "full", items=12, batch=3)  # 12 items × 3 methods: 12 chunks of 2 UNet calls
    with pytest.raises(InputError, match=r"could not write .*\.png \(No space left on device\); everything written so far is kept"):
        run_bench(suite, BenchOptions(out=tmp_path / "out", cache=tmp_path / "cache"))
    assert len(unet_calls) <= 4 * 2, "stopped a chunk or two after the failed write (writes run beside the sampler), not after all 12"
