"""What a prediction folder holds: ``prediction.json`` names the model (its file and sha256) and the settings of
the predictions in it, so that a second ``predict`` into the same folder with another model or other settings is
refused instead of leaving a folder whose masks come from one model and whose labels from another."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unetkit.errors import InputError
from unetkit.safety.atomic import write_text
from unetkit.safety.paths import PREDICTION_MARKER

RECORD_NAME = PREDICTION_MARKER  # a folder holding it is a prediction folder (safety.paths)


def claim_prediction_folder(out: str | Path, model: str | Path, settings: dict[str, Any], task: str | None = None,
                            details: dict[str, Any] | None = None) -> Path:
    """Record ``model`` and ``settings`` in ``out/prediction.json``, or refuse a folder whose record names another
    model or other settings and holds their outputs (InputError naming the folder and the fix). The same model and
    settings may predict into it again (more images, or the same ones anew); a record beside no output (a run
    refused before writing any) is replaced. ``details``: what the task keeps of the model for reading the
    predictions later (``Task.prediction_record``: a multiclass model's class names). Returns the record's path."""
    from unetkit.pretrained import sha256_of

    out, model = Path(out), Path(model)
    wanted = json.loads(json.dumps({"model": str(model.resolve()), "sha256": sha256_of(model), "settings": settings,
                                    **({"task": task} if task else {}), **(details or {})}))
    record = out / RECORD_NAME
    if not record.is_file() or not _holds_outputs(out):  # a run refused before its first output claims nothing
        out.mkdir(parents=True, exist_ok=True)
        return write_text(record, json.dumps(wanted, indent=2) + "\n")
    try:
        stored = json.loads(record.read_text())
        stored_settings = dict(stored.get("settings", {}))
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise InputError(f"{record}: unreadable prediction record ({error}); choose another --out, or remove "
                         f"{out} to predict into it again") from error
    if stored.get("sha256") != wanted["sha256"]:
        raise InputError(f"--out {out} holds the predictions of another model ({stored.get('model')}); choose "
                         f"another --out, or remove {out} to predict into it again")
    # keys in both: a record of another unetkit version may hold a setting this one leaves out (or the reverse)
    changed = sorted(key for key in set(stored_settings) & set(wanted["settings"])
                     if stored_settings.get(key) != wanted["settings"].get(key))
    if changed:
        raise InputError(f"--out {out} holds predictions made with other settings ({', '.join(changed)} "
                         f"{'differs' if len(changed) == 1 else 'differ'}); "
                         f"use the same ones, another --out, or remove {out} to predict into it again")
    missing = {key: value for key, value in wanted.items() if key not in stored}
    if missing:  # a record of an earlier unetkit gains what this one keeps (a multiclass model's class names)
        write_text(record, json.dumps({**stored, **missing}, indent=2) + "\n")
    return record


def release_unused_claim(out: str | Path) -> None:
    """Remove ``out``'s record when the folder holds no output: a run refused before writing any leaves no record
    behind (which would make the folder look like a prediction folder to the dataset and --out checks)."""
    record = Path(out) / RECORD_NAME
    if record.is_file() and not _holds_outputs(Path(out)):
        record.unlink(missing_ok=True)


def _holds_outputs(out: Path) -> bool:
    """True when ``out`` holds a file besides its record (hidden files, such as the lock, not counted)."""
    return any(path.is_file() and path.name != RECORD_NAME and not path.name.startswith(".")
               for path in out.rglob("*"))


def recorded_value(pred: str | Path, key: str) -> tuple[Any, Path] | None:
    """(``key`` of the record of the model that predicted ``pred``, the record): the record ``predict`` left in the
    folder, or the folder above for ``pred/masks``; None for folders without one (other tools' predictions) or a
    record without ``key``."""
    pred = Path(pred)
    for folder in (pred, pred.parent):
        record = folder / RECORD_NAME
        if not record.is_file():
            continue
        try:
            value = json.loads(record.read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            return None
        return None if value is None else (value, record)
    return None


def recorded_task(pred: str | Path) -> tuple[str, Path] | None:
    """(the task of the model that predicted ``pred``, its record), as ``recorded_value``."""
    found = recorded_value(pred, "task")
    return found if found is not None and isinstance(found[0], str) else None
