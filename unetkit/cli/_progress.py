"""Progress output that suits where a command runs, set once for every bar (tqdm's TQDM_* defaults).

- ``--quiet``: no bars at all, loading bars included (they take no ``disable`` argument of their own);
- stderr not a terminal (a cluster job's log, a pipe): bars redraw at most every 30 s, as plain
  instead of ~10 times a second (two short epochs wrote 11.5 KB of carriage returns to a log).
Values the user already set in the environment win.
"""

from __future__ import annotations

import os
import sys

LOG_INTERVAL_S = 30  # seconds between progress lines in a log file


def configure_progress(quiet: bool, stream=None) -> None:
    """Set tqdm's defaults for this process from ``--quiet`` and whether ``stream`` (stderr) is a terminal."""
    stream = stream or sys.stderr
    if quiet:
        os.environ.setdefault("TQDM_DISABLE", "1")
    elif not (hasattr(stream, "isatty") and stream.isatty()):
        os.environ.setdefault("TQDM_MININTERVAL", str(LOG_INTERVAL_S))
