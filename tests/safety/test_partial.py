"""The unfinished-output bookkeeping: what a resume can read back before it starts."""

import pytest

from unetkit.errors import InputError
from unetkit.safety.partial import PartialOutput


def test_the_stored_signature_is_the_one_an_unfinished_output_started_with(tmp_path):
    partial = PartialOutput(tmp_path / "slide.npy")
    assert partial.stored_signature() is None  # nothing started
    partial.start({"tile": (64, 64), "scale": 2}, resume=False)
    partial.work.write_bytes(b"data")
    assert PartialOutput(tmp_path / "slide.npy").stored_signature() == {"tile": [64, 64], "scale": 2}
    partial.finish()
    assert PartialOutput(tmp_path / "slide.npy").stored_signature() is None  # finished: nothing to resume


def test_an_unreadable_progress_file_gives_no_signature_and_start_names_it(tmp_path):
    partial = PartialOutput(tmp_path / "slide.npy")
    partial.start({"scale": 1}, resume=False)
    partial.work.write_bytes(b"data")
    partial.progress.write_text("{not json")
    assert partial.stored_signature() is None
    with pytest.raises(InputError, match="progress.json: unreadable progress file"):
        partial.start({"scale": 1}, resume=True)
