"""Class legends: every class colour is shown, long legends wrap, background can be left out."""

import numpy as np

from unetkit.data.masks import default_colors
from unetkit.visualize.legend import legend_strip, with_legend


def _has_colour(rgb: np.ndarray, colour) -> bool:
    return bool(np.all(rgb == np.asarray(colour, dtype=np.uint8), axis=-1).any())


def test_legend_shows_each_class_colour_below_the_picture():
    colours = default_colors(4)
    picture = np.full((50, 300, 3), 128, dtype=np.uint8)
    out = with_legend(picture, ["background", "a", "b", "c"], colours)
    assert out.shape[1] == 300 and out.shape[0] > 50 and np.array_equal(out[:50], picture)
    strip = out[50:]
    assert all(_has_colour(strip, colours[i]) for i in (1, 2, 3))
    marked = colours.copy()
    marked[0] = (1, 2, 3)  # a background colour found nowhere else
    assert not _has_colour(legend_strip(["bg", "a"], marked[:2], 300), marked[0])
    assert _has_colour(legend_strip(["bg", "a"], marked[:2], 300, skip_background=False), marked[0])


def test_long_legends_wrap_to_more_lines():
    names = ["background"] + [f"a rather long class name {i}" for i in range(1, 7)]
    wide = legend_strip(names, default_colors(7), 2000)
    narrow = legend_strip(names, default_colors(7), 200)
    assert narrow.shape[0] > wide.shape[0] and narrow.shape[1] == 200
