"""A wheel holds the packages, cli.py and the suite files, and an install from it runs `localctrl`."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "README.md", "cli.py", "localctrl", "bench", "reports", "suites"]


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"  # build from a copy: setuptools writes build/ and egg-info beside the sources
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / name).is_dir() else {}))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(tmp_path / "dist"), str(source)],
        check=True,
    )
    return next((tmp_path / "dist").glob("localctrl-*.whl"))


def test_wheel_contains_code_and_suites_and_runs(tmp_path):
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "cli.py" in names
    shipped = ("localctrl/weights/shapes-base/unet/diffusion_pytorch_model.safetensors", "localctrl/weights/shapes-base/tokenizer/tokenizer.json",
                "localctrl/weights/shapes-net/model.safetensors", "localctrl/data/ade20k-palette.json", "reports/published.yaml",
                "suites/controlnetpp-canny-sd15.yaml", "reports/templates/comparison.html.j2")  # the comparison page
    for required in ("localctrl/models/stacks.py", "bench/suite.py", "bench/stages/plan.py", "reports/tables.py", "suites/smoke.yaml", *shipped):
        assert required in names, required
    assert not any(name.startswith("tests/") for name in names)

    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)], check=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = ("import cli, suites, reports.anchors as a; print(cli.__file__); print(suites.__file__); print(suites.available_suites()); "
             "print(a.published()['controlnetpp']['rows'][0]['metrics'])")  # the anchors' data file is read from the install
    located = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert all(line.startswith(str(target)) for line in located.stdout.splitlines()[:2]), located.stdout
    assert "smoke" in located.stdout and "'edge_f1_all': 0.2365" in located.stdout
    helped = subprocess.run([str(target / "bin" / "localctrl"), "--help"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr
    assert "doctor" in helped.stdout and "bench" in helped.stdout
