"""Class ids found in multiclass masks must be 0..K-1 without gaps unless the classes are declared.

A stray label (a 7 among classes 0, 1, 2, from a painting slip or a foreign mask) would otherwise create
classes 3..7: four empty classes with NaN Dice, and a network with outputs nobody asked for.
"""

from __future__ import annotations

from unetkit.errors import InputError


def check_contiguous_class_ids(found: dict[int, str]) -> int:
    """Largest id of ``found`` ({class id: a file holding it}); InputError naming the stray ids and files
    when some ids between 1 and the largest never occur."""
    if not found:
        return 0
    top = max(found)
    missing = sorted(set(range(1, top + 1)) - set(found))
    if not missing:
        return top
    present = sorted(found)
    # ids above the first gap are the suspects: they are what makes the gap
    stray = [value for value in present if value > missing[0]]
    where = ", ".join(f"{value} in {found[value]}" for value in stray[:3])
    shown = ", ".join(map(str, missing[:8])) + (" ..." if len(missing) > 8 else "")
    raise InputError(
        f"the masks hold class ids {', '.join(map(str, present[:12]))}{' ...' if len(present) > 12 else ''} "
        f"but never {shown}: class ids must be 0..K-1 without gaps (stray: {where}); fix those masks, or declare "
        f"the classes with --class-names (data.class_names); object ids need --task instances")
