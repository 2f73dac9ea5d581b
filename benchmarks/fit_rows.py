"""Rows of the benchmarks that train with ``unetkit.training.loop.fit`` and score the final model once on
held-out images (``nuclei3d.py``, ``ternaus_vs_unet.py``): the scores, and the printed table."""

from __future__ import annotations

from typing import Any

# the held-out instance scores of the last epoch, then with the tuned post-processing: (key, header, width, format)
SCORE_COLUMNS = [("test_dsb_score", "DSB score", 10, ".3f"), ("test_ap50", "AP50", 7, ".3f"),
                 ("test_dsb_score_tuned", "DSB tuned", 10, ".3f"), ("test_ap50_tuned", "AP50 tuned", 11, ".3f")]


def held_out_scores(result: Any, keys: tuple[str, ...]) -> dict[str, float]:
    """``test_<key>`` of the last epoch's validation for each of ``keys`` (e.g. "dice"), then the DSB score and
    AP50 with the post-processing tuned at the end, what ``predict`` gives (nan where the run tuned none)."""
    last = result.history[-1]  # the final model, scored once on the held-out images (no selection on them)
    row = {f"test_{key}": round(last[f"val_{key}"], 4) for key in keys}
    for key in ("dsb_score", "ap50"):
        row[f"test_{key}_tuned"] = result.tuned_scores.get(f"val_{key}_tuned", float("nan"))
    return row


def print_table(rows: list[dict[str, Any]], label: tuple[str, str, int],
                columns: list[tuple[str, str, int, str]]) -> None:
    """One line per row: ``label`` (key, header, width) left-aligned, then ``columns`` (key, header, width,
    format of the value, e.g. ".3f") right-aligned."""
    key, header, width = label
    print(f"{header:<{width}} " + " ".join(f"{title:>{size}}" for _, title, size, _ in columns))
    for row in rows:
        print(f"{row[key]:<{width}} " + " ".join(f"{row[name]:>{size}{spec}}" for name, _, size, spec in columns))
