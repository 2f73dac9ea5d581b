"""The README's Python section and the scripts in examples/ run as written, on a small synthetic set."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from unetkit.data.synthetic import write_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(markdown: str, section: str) -> list[str]:
    """The ```python blocks of one ``## section`` of a Markdown text, in order."""
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", markdown, flags=re.M | re.S)
    assert match, f"README has no '## {section}' section"
    return re.findall(r"^```python\n(.*?)^```", match.group(1), flags=re.M | re.S)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """What `unetkit synth --out data/synth` makes (train/, val/, test/), with fewer and smaller images."""
    root = tmp_path_factory.mktemp("work")
    for seed, (split, count) in enumerate((("train", 3), ("val", 1), ("test", 1))):
        write_synthetic_dataset(root / "data" / "synth" / split, count, seed=seed, shape=(128, 160))
    return root


def test_python_section_of_the_readme_runs(synth, monkeypatch):
    blocks = python_blocks((ROOT / "README.md").read_text(), "Python")
    assert len(blocks) >= 3 and "unetkit.load(" in "".join(blocks)
    monkeypatch.chdir(synth)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md (Python section)", "exec"), namespace)  # noqa: S102
    assert namespace["result"].labels.shape == namespace["image"].shape
    assert 0.0 <= namespace["scores"].summary["dsb_score"] <= 1.0
    assert (synth / "runs" / "py" / "big_labels.npy").is_file()
    assert set(namespace["run"].tuned_scores) == {"val_dsb_score_tuned", "val_ap50_tuned"}  # printed as shown


def test_example_scripts_run_on_tiny_data(synth, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(script: str, *args: str, code: int = 0) -> str:
        done = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == code, done.stderr[-2000:]
        return done.stdout if code == 0 else done.stderr

    out = run("train_and_predict.py", "--data", str(synth / "data" / "synth"), "--out", "runs/example",
              "--epochs", "1", "--base-channels", "8", "--patches", "16")
    assert "test: DSB score" in out and (tmp_path / "runs" / "example" / "best.pt").is_file()
    out = run("measure_large_array.py", "--model", "runs/example", "--size", "300", "--out", "runs/objects.csv")
    assert "300x300 px" in out and (tmp_path / "runs" / "objects.csv").read_text().startswith("id,area")
    # again: the table and the mosaic are never written over, and a mistake is one line
    table = (tmp_path / "runs" / "objects.csv").read_text()
    err = run("measure_large_array.py", "--model", "runs/example", "--size", "300", "--out", "runs/objects.csv", code=2)
    assert "runs/objects.csv exists" in err and "Traceback" not in err
    err = run("measure_large_array.py", "--model", "runs/example", "--size", "300", "--out", "runs/again.csv", code=2)
    assert "mosaic.npy exists" in err and (tmp_path / "runs" / "objects.csv").read_text() == table
    err = run("train_and_predict.py", "--data", str(synth / "data" / "synth"), "--out", "runs/example", code=2)
    assert "already holds a run" in err and len(err.strip().splitlines()) == 1
