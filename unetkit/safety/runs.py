"""Run folders that stay consistent across kills: where the data are, and repairs on resume.

- Data paths are stored absolute with a fingerprint (file count and a hash of the relative names), so a
  run resumes from any working directory; ``train --resume --data NEW --val NEW`` moves it to a new
  location explicitly, and a warning says when the files differ from those the run started with.
- A run folder is written in the order metrics.csv, last.pt (the commit point), best.pt. A kill between
  them leaves last.pt authoritative; ``repair_on_resume`` then rewrites best.pt when last.pt is the best
  epoch (its weights are the best weights), and removes a summary.json of the earlier finish.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path
from typing import Any

from unetkit.errors import InputError
from unetkit.safety.atomic import atomic_path


def absolute(path: str | Path | None) -> str | None:
    """The absolute form of a data path for storing in a checkpoint (None stays None)."""
    return None if path is None else str(Path(path).expanduser().resolve())


def data_fingerprint(*folders: str | Path | None) -> dict[str, Any]:
    """{"files": count, "names_sha256": hash of the sorted relative file names} over the given folders."""
    names = []
    for index, folder in enumerate(folders):
        if folder is None:
            continue
        root = Path(folder)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        names += [f"{index}/{p.relative_to(root) if p != root else p.name}" for p in files]
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
    return {"files": len(names), "names_sha256": digest}


def resume_data(state: dict[str, Any], train_dir: str | Path | None,
                val_dir: str | Path | None) -> tuple[str, str | None]:
    """(train, val) folders of a resumed run: given ones (a new location) win over the stored ones;
    a missing folder is an InputError naming --data / --val; a fingerprint change is a warning."""
    stored_train, stored_val = state.get("train_dir"), state.get("val_dir")
    train = str(train_dir) if train_dir else stored_train
    val = str(val_dir) if val_dir else stored_val
    for option, path in (("--data", train), ("--val", val)):
        if path is not None and not Path(path).exists():
            raise InputError(f"dataset folder not found: {path} (stored in the run); give its new location with "
                             f"{option} together with --resume")
    stored = state.get("data_fingerprint")
    if stored is not None and data_fingerprint(train, val) != stored:
        print(f"warning: the data in {train}" + (f" and {val}" if val else "") + f" differ from those the run "
              f"started with ({stored['files']} files then); training continues on the files found now",
              file=sys.stderr)
    return train, val


def _epoch_of(path: Path) -> int | None:
    from unetkit.checkpoint import load_checkpoint

    try:
        return int(load_checkpoint(path).get("epoch", -1))
    except (InputError, OSError, ValueError):
        return None  # missing or damaged


def repair_on_resume(run_dir: Path, state: dict[str, Any]) -> list[str]:
    """Bring best.pt and summary.json in line with last.pt (``state``); returns what was repaired."""
    repaired = []
    best = run_dir / "best.pt"
    if state.get("best_epoch") == state.get("epoch") and _epoch_of(best) != state.get("epoch"):
        with atomic_path(best) as tmp:  # last.pt holds the best epoch's weights: best.pt was not written
            shutil.copyfile(run_dir / "last.pt", tmp)
        repaired.append(f"best.pt (epoch {state['epoch']})")
    # the run is not finished any more: its summary.json is written again at the end
    (run_dir / "summary.json").unlink(missing_ok=True)
    if repaired:
        print(f"{run_dir}: repaired after an interruption: {'; '.join(repaired)}", file=sys.stderr)
    return repaired
