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


CONTENT_HASH_LIMIT = 4 << 30  # bytes: datasets up to this size are hashed whole (~1 s per GB), larger ones by sizes


def data_fingerprint(*folders: str | Path | None) -> dict[str, Any]:
    """{"files": count, "names_sha256": the sorted relative file names, "sizes_sha256": names and sizes,
    "content_sha256": the files' bytes (datasets up to ``CONTENT_HASH_LIMIT``)} over the given folders: a resume
    notices files renamed, added, or changed in place (corrected masks)."""
    entries: list[tuple[str, Path]] = []
    for index, folder in enumerate(folders):
        if folder is None:
            continue
        root = Path(folder)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        entries += [(f"{index}/{p.relative_to(root) if p != root else p.name}", p) for p in files]
    names = [name for name, _ in entries]
    sizes = [path.stat().st_size for _, path in entries]
    fingerprint = {"files": len(names), "names_sha256": hashlib.sha256("\n".join(names).encode()).hexdigest(),
                   "sizes_sha256": hashlib.sha256(
                       "\n".join(f"{n}\t{b}" for n, b in zip(names, sizes, strict=True)).encode()).hexdigest()}
    if sum(sizes) <= CONTENT_HASH_LIMIT:
        digest = hashlib.sha256()
        for _, path in entries:
            with path.open("rb") as handle:
                for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                    digest.update(block)
        fingerprint["content_sha256"] = digest.hexdigest()
    return fingerprint


def same_data(stored: dict[str, Any], found: dict[str, Any]) -> bool:
    """Whether two fingerprints agree on every hash both hold (an older run's record holds fewer)."""
    return all(stored[key] == found[key] for key in set(stored) & set(found))


def resume_data(state: dict[str, Any], train_dir: str | Path | None,
                val_dir: str | Path | None) -> tuple[str, str | None]:
    """(train, val) folders of a resumed run: given ones (a new location) win over the stored ones;
    a missing folder is an InputError naming --data / --val; a fingerprint change is a warning. ``state`` then
    holds the fingerprint of the data found, which the resumed run records."""
    stored_train, stored_val = state.get("train_dir"), state.get("val_dir")
    train = str(train_dir) if train_dir else stored_train
    val = str(val_dir) if val_dir else stored_val
    for option, path in (("--data", train), ("--val", val)):
        if path is not None and not Path(path).exists():
            raise InputError(f"dataset folder not found: {path} (stored in the run); give its new location with "
                             f"{option} together with --resume")
    stored, found = state.get("data_fingerprint"), data_fingerprint(train, val)
    if stored is not None and not same_data(stored, found):
        print(f"warning: the data in {train}" + (f" and {val}" if val else "") + f" differ from those the run "
              f"started with ({stored['files']} files then); training continues on the files found now",
              file=sys.stderr)
    state["data_fingerprint"] = found  # what the resumed run records from now on (hashed once)
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
