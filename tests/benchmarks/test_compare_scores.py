"""benchmarks/compare_scores.py: paired differences of two models' per-image scores, by image type."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import compare_scores  # noqa: E402


def write_scores(path: Path, dsb: list[float], types: list[str]) -> Path:
    rows = [{"image": f"im{i:02d}", "type": t, "dsb_score": d, "ap50": min(1.0, d + 0.2)}
            for i, (d, t) in enumerate(zip(dsb, types, strict=True))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"summary": {}, "rows": rows}))
    return path


def test_a_constant_gain_is_found_on_every_image_and_small_types_get_no_interval(tmp_path, capsys):
    dsb = list(np.linspace(0.3, 0.7, 14))
    types = ["fluorescence"] * 12 + ["brightfield"] * 2
    first = write_scores(tmp_path / "a" / "nuclei" / "score.json", dsb, types)
    second = write_scores(tmp_path / "b" / "nuclei" / "score.json", [d + 0.02 for d in dsb], types)
    assert compare_scores.main([str(first), str(second)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:]}
    assert set(rows) == {"a", "b", "a (fluorescence)", "b (fluorescence)"}  # brightfield: 2 images, no row
    assert f"{np.mean(dsb) + 0.02:.4f} [" in rows["b"]
    assert "+0.0200 [+0.0200, +0.0200]" in rows["b"]  # the same gain on every image: a point interval
    assert rows["a"].endswith("| — | — |")


def test_models_scored_on_other_images_are_refused(tmp_path):
    first = write_scores(tmp_path / "a.json", [0.5] * 12, ["fluorescence"] * 12)
    second = write_scores(tmp_path / "b.json", [0.5] * 11, ["fluorescence"] * 11)
    with pytest.raises(SystemExit, match="other images"):
        compare_scores.main([str(first), str(second)])
    assert compare_scores.main([str(first)]) == 2
