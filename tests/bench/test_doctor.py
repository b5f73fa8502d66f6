from pathlib import Path

from bench.doctor import component_statuses
from localctrl.models.weights import INCEPTION_FILE


def write_hub_cache_entry(cache: Path, repo_id: str, filename: str) -> Path:
    """The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<rev>/<file>}."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    target = repo / "snapshots" / ("0" * 40) / filename
    target.parent.mkdir(parents=True)
    target.write_text("{}")
    return target


def test_components_are_found_where_users_put_them(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("LOCALCTRL_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setattr("localctrl.models.weights.CLEANFID_DOWNLOAD_DIR", tmp_path / "nowhere")
    before = {status.component.name: status.location for status in component_statuses()}
    assert before["SD 1.5"] is None and before["Inception (clean-fid)"] is None

    sd15 = write_hub_cache_entry(cache, "stable-diffusion-v1-5/stable-diffusion-v1-5", "model_index.json")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / INCEPTION_FILE).write_bytes(b"x")
    after = {status.component.name: status.location for status in component_statuses()}
    assert after["SD 1.5"] == str(sd15)
    assert after["Inception (clean-fid)"] == str(tmp_path / "weights" / INCEPTION_FILE)
    assert after["SD 1.4"] is None
