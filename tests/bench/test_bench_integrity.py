"""Damaged cache files are never trusted: each is found, named, and made again, and the results are as before."""

import io
import json
from pathlib import Path

from rich.console import Console

from bench.run import BenchOptions, run_bench
from test_bench_run import NO_TRAINING, suite_file


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
