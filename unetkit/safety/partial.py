"""Large outputs written in pieces: an unfinished name while being written, a progress file to resume.

``predict-large --out slide.npy`` writes ``slide.unfinished.npy`` and records each finished strip in
``slide.npy.progress.json``; only when every strip is written is the file renamed to ``slide.npy`` and
the progress file removed. A killed run therefore never leaves a file under the final name that looks
finished, and ``--resume`` continues with the strips not yet written (same model, image and settings,
checked by a signature stored in the progress file).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from unetkit.errors import InputError
from unetkit.safety.atomic import write_text


def unfinished_path(final: str | Path) -> Path:
    """``slide.npy`` -> ``slide.unfinished.npy`` (same folder and suffix, so the format is unchanged)."""
    final = Path(final)
    for compound in (".ome.zarr", ".ome.tiff", ".ome.tif"):  # keep OME endings whole: x.unfinished.ome.zarr
        if final.name.lower().endswith(compound):
            stem = final.name[: -len(compound)]
            return final.with_name(f"{stem}.unfinished{final.name[-len(compound):]}")
    return final.with_name(f"{final.stem}.unfinished{final.suffix}")


class PartialOutput:
    """An output file written under its unfinished name, with the indices of finished pieces recorded."""

    def __init__(self, final: str | Path):
        self.final = Path(final)
        self.work = unfinished_path(self.final)
        self.progress = self.final.with_name(f"{self.final.name}.progress.json")
        self.signature: dict[str, Any] = {}
        self.done: set[int] = set()

    def start(self, signature: dict[str, Any], resume: bool) -> bool:
        """Begin (or with ``resume`` continue) writing; returns True when an unfinished output is continued."""
        self.signature = json.loads(json.dumps(signature))  # as stored: tuples become lists
        if resume and self.work.exists() and self.progress.is_file():
            stored = self._read_progress()
            if stored.get("signature") != self.signature:
                changed = sorted(k for k in self.signature if stored.get("signature", {}).get(k) != self.signature[k])
                raise InputError(f"{self.work} was started with other settings ({', '.join(changed)} differ); "
                                 "use the same ones to --resume, or run without --resume to start over")
            self.done = set(stored.get("done", []))
            return True
        self._check_ours()
        self.discard()
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self._save()
        return False

    def stored_signature(self) -> dict[str, Any] | None:
        """The signature an unfinished output here was started with; None where there is none to resume (or its
        progress file is unreadable: ``start`` then says so)."""
        if not (self.work.exists() and self.progress.is_file()):
            return None
        try:
            return self._read_progress().get("signature")
        except InputError:
            return None

    def _read_progress(self) -> dict[str, Any]:
        """The progress file's contents; InputError naming it when it cannot be read."""
        try:
            stored = json.loads(self.progress.read_text())
        except (OSError, ValueError) as error:
            raise InputError(f"{self.progress}: unreadable progress file ({error}); run again without "
                             "--resume to start over") from error
        if not isinstance(stored, dict):
            raise InputError(f"{self.progress}: unreadable progress file (not a JSON object); run again without "
                             "--resume to start over")
        return stored

    def mark_done(self, index: int) -> None:
        """Record piece ``index`` as written (call after its data are in the file)."""
        self.done.add(int(index))
        self._save()

    def finish(self) -> Path:
        """Rename the complete output to its final name and drop the progress file."""
        if self.final.is_dir():  # a zarr store from an earlier run: replaced as a whole
            shutil.rmtree(self.final)
        os.replace(self.work, self.final)
        self.progress.unlink(missing_ok=True)
        return self.final

    def _check_ours(self) -> None:
        """Refuse to remove an unfinished name or progress file that unetkit did not write: a file of the user's
        that happens to be called ``slide.unfinished.npy`` (the input itself, even) is never deleted."""
        if self.work.exists() and not self.progress.is_file():
            raise InputError(f"{self.work} exists and is not an unfinished output of unetkit (it has no "
                             f"{self.progress.name}); move or rename it, or choose another output name")
        if self.progress.is_file():
            try:
                stored = json.loads(self.progress.read_text())
            except (OSError, ValueError):
                stored = None
            if not isinstance(stored, dict) or "signature" not in stored:
                raise InputError(f"{self.progress} is not a progress file of unetkit; move or rename it, or choose "
                                 "another output name")

    def discard(self) -> None:
        """Remove an unfinished output and its progress file (starting over)."""
        if self.work.is_dir():
            shutil.rmtree(self.work)
        elif self.work.exists():
            self.work.unlink()
        self.progress.unlink(missing_ok=True)

    def _save(self) -> None:
        write_text(self.progress, json.dumps({"signature": self.signature, "done": sorted(self.done)}))
