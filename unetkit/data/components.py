"""One labelling rule for every command that reads instance labels (evaluate, submit).

A label image holding a single non-zero value (a binary 0/255 mask, or one object) is split into its
4-connected (6 in 3D) components; an image with several ids keeps them. So a binary mask counts the same
objects in ``unetkit evaluate`` and in ``unetkit submit``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def instance_labels(labels: np.ndarray) -> np.ndarray:
    """Instance ids of ``labels`` (*S): a one-value (binary) image becomes its connected components."""
    foreground = labels[labels != 0]
    if foreground.size == 0 or foreground.min() != foreground.max():
        return labels
    components, _ = ndi.label(labels != 0, structure=ndi.generate_binary_structure(labels.ndim, 1))
    return components.astype(np.int32)
