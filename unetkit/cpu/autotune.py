"""Pick fast CPU kernels by measuring them on the machine at hand, once, and remember the choice.

A fast path (GEMM weight gradients, GEMM up-convolutions, Winograd convolutions) that was 1.2-2.8x
faster on one 2-core AVX2 EPYC can be no faster, or slower, where oneDNN has AVX-512 kernels. So the
first time a layer of a given shape class runs, ``choose`` times the fast path and PyTorch's own
against each other on a small slice of that shape (a few milliseconds to a few tenths of a second),
interleaved, best of several calls, and keeps the fast path only if it wins by ``MARGIN``: the default is
never slower than plain PyTorch. Decisions are cached in ``$XDG_CACHE_HOME/unetkit/cpu-autotune.json``
(``~/.cache`` by default), one table per CPU model + flags, torch version and thread count, so later runs
(and every process of a run) decide instantly; ``unetkit tune-cpu`` shows or clears the table.

``UNETKIT_AUTOTUNE=0`` turns the measurements off process-wide (tests, CI, reproducible runs): the fast
paths then follow their fixed switches (``train.gemm_convs``, ``inference.winograd``) as they are.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from unetkit.cpu.info import cpu_flags, cpu_model

MARGIN = 1.08  # the fast path must be >= 1.08x faster in every round: a tie is not worth a different kernel
# timed calls of each path after one warm-up, interleaved, the best one counting (the least disturbed by
# other work on the machine): at least 3, and up to 40 until 0.1 s were spent on both together; 2 rounds.
# A paper-width net (64..1024 channels, 256 px) tunes 17 layer classes in ~1 min on a loaded 2-core EPYC,
# once per machine; the 16-32 base-channel nets used on CPUs in a few seconds.
MIN_REPEATS, MAX_REPEATS, MIN_SECONDS, ROUNDS = 3, 40, 0.1, 2
ENV_SWITCH = "UNETKIT_AUTOTUNE"
CACHE_NAME = "cpu-autotune.json"


@dataclass(frozen=True)
class Decision:
    """Whether the fast path runs for one shape class, and the times (ms) that decided it."""

    fast: bool
    fast_ms: float  # best call of each path
    plain_ms: float
    speedup: float  # plain / fast best time, the smaller of two rounds: what decides
    note: str = ""  # why a fast path lost other than by time, e.g. "less accurate"


_decided: dict[tuple[str, str], Decision] = {}  # this process's decisions: no file read per layer call


def env_allows() -> bool:
    """False when ``UNETKIT_AUTOTUNE`` is 0/false/off/no: nothing is timed in this process."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "off", "no")


def cache_path() -> Path:
    """``$XDG_CACHE_HOME/unetkit/cpu-autotune.json``, ``~/.cache/unetkit/...`` when the variable is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "unetkit" / CACHE_NAME


def machine_key() -> str:
    """What a timing depends on: CPU model and flags, torch version, threads (e.g. ``AMD EPYC [avx2 fma] |
    torch 2.13.0+cpu | 2 threads``)."""
    return (f"{cpu_model()} [{' '.join(cpu_flags())}] | torch {torch.__version__} | "
            f"{torch.get_num_threads()} threads")


def load_table() -> dict[str, dict[str, dict]]:
    """The whole cache file: {machine key: {shape key: decision fields}}; empty when absent or unreadable."""
    try:
        table = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def _store(key: str, decision: Decision) -> None:
    """Merge one decision into the cache file, written under a temporary name and renamed (atomic), so a
    concurrent process sees the old or the new file, never half of one. Unwritable caches are skipped."""
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        table = load_table()
        table.setdefault(machine_key(), {})[key] = asdict(decision)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".cpu-autotune-", delete=False) as tmp:
            json.dump(table, tmp, indent=1, sort_keys=True)
        os.replace(tmp.name, path)
    except OSError:
        pass


def clear() -> int:
    """Delete the cache file and this process's decisions; returns how many decisions were dropped."""
    count = sum(len(rows) for rows in load_table().values() if isinstance(rows, dict))
    _decided.clear()
    try:
        cache_path().unlink()
    except FileNotFoundError:
        pass
    return count


def time_pair(fast: Callable[[], object], plain: Callable[[], object], min_repeats: int = MIN_REPEATS,
              min_seconds: float = MIN_SECONDS, max_repeats: int = MAX_REPEATS) -> tuple[float, float]:
    """Best seconds per call of each callable after one warm-up call each, calls alternating so a change
    of machine load hits both alike: at least ``min_repeats`` pairs, more (up to ``max_repeats``) until
    ``min_seconds`` were spent, so that millisecond kernels get enough calls to see an undisturbed one
    (on a busy 2-core machine single calls measured 10-100x slower than the best)."""
    fast()
    plain()
    best = [float("inf"), float("inf")]
    spent, pairs = 0.0, 0
    while pairs < min_repeats or (spent < min_seconds and pairs < max_repeats):
        for i, fn in enumerate((fast, plain)):
            start = time.perf_counter()
            fn()
            took = time.perf_counter() - start
            best[i] = min(best[i], took)
            spent += took
        pairs += 1
    return best[0], best[1]


def measure(fast: Callable[[], object], plain: Callable[[], object],
            rounds: int = ROUNDS) -> tuple[float, float, float]:
    """(best fast s, best plain s, speed-up) over ``rounds`` independent rounds of ``time_pair``; the
    speed-up is the smallest round's plain / fast: a fast path must win every round, so one lucky round
    on a noisy machine cannot make the default slower than PyTorch."""
    results = [time_pair(fast, plain) for _ in range(rounds)]
    speedup = min(p / max(f, 1e-12) for f, p in results)
    return min(f for f, _ in results), min(p for _, p in results), speedup


Candidates = tuple[Callable[[], object], Callable[[], object], "Callable[[], bool] | None"]


def choose(key: str, prepare: Callable[[], Candidates], margin: float = MARGIN) -> bool:
    """Whether to run the fast path for shape class ``key``: the cached decision, else measured now.

    ``prepare`` is only called when a measurement is due; it returns (fast, plain, accurate): two
    callables doing the same work, and an optional check of the fast path against a float64 reference.
    A fast path that fails that check is never chosen, whatever its speed.
    """
    machine = machine_key()
    if (machine, key) in _decided:
        return _decided[(machine, key)].fast
    stored = load_table().get(machine, {}).get(key)
    try:
        decision = Decision(**stored) if isinstance(stored, dict) else None
    except TypeError:  # a cache written by another version: measure again
        decision = None
    if decision is None:
        fast, plain, accurate = prepare()
        fast_s, plain_s, speedup = measure(fast, plain)
        ok = accurate() if accurate is not None else True
        decision = Decision(fast=ok and speedup >= margin, fast_ms=round(1e3 * fast_s, 3),
                            plain_ms=round(1e3 * plain_s, 3), speedup=round(speedup, 3),
                            note="" if ok else "less accurate")
        _store(key, decision)
    _decided[(machine, key)] = decision
    return decision.fast


def measured_slice(height: int, width: int, pixels: int = 2**14, max_width: int = 256) -> tuple[int, int]:
    """(h, w) of the slice a layer is timed on: at most ``pixels`` (128 x 128) of one image, whole rows
    up to ``max_width``. Per-pixel cost is what decides, and it is flat beyond a few thousand pixels:
    timing a slice keeps each measurement to milliseconds, and nets of any patch size share the entry."""
    w = min(width, max_width)
    return min(height, max(3, pixels // w)), w
