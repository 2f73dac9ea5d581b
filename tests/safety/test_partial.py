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


def test_files_that_unetkit_did_not_write_under_the_unfinished_names_are_never_deleted(tmp_path):
    """predict-large --out scan.npy deleted the input scan.unfinished.npy and a user's res.npy.progress.json."""
    partial = PartialOutput(tmp_path / "scan.npy")
    partial.work.write_bytes(b"the user's own scan")
    with pytest.raises(InputError, match="scan.unfinished.npy exists and is not an unfinished output"):
        partial.start({"scale": 1}, resume=False)
    assert partial.work.read_bytes() == b"the user's own scan"
    partial.work.unlink()
    partial.progress.write_text('{"my": "notes"}')
    with pytest.raises(InputError, match="scan.npy.progress.json is not a progress file of unetkit"):
        partial.start({"scale": 1}, resume=False)
    assert partial.progress.read_text() == '{"my": "notes"}'
    partial.progress.unlink()
    assert partial.start({"scale": 1}, resume=False) is False  # its own, started anew, may be replaced
    partial.work.write_bytes(b"half")
    assert partial.start({"scale": 2}, resume=False) is False and not partial.work.exists()


def test_only_temporaries_of_unetkit_are_swept_and_subfolders_too(tmp_path):
    """The sweep deleted a user's .thesis.1999.tmp.txt; one folder down, a killed predict's files stayed."""
    from unetkit.safety.locks import acquire, release

    dead = 2**22 + 12345  # above the default pid_max: never a live process
    mine = [tmp_path / f".img.png.{dead}.tmp.png", tmp_path / "masks" / f".a.png.{dead}.tmp.png",
            tmp_path / f".v.nii.gz.{dead}.tmp.nii.gz"]
    users = [tmp_path / f".thesis.{dead}.tmp.txt", tmp_path / f".budget.{dead}.tmp.xlsx"]
    for path in mine + users:
        path.parent.mkdir(exist_ok=True)
        path.write_text("x")
    release(acquire(tmp_path, "test"))
    assert [path.exists() for path in mine] == [False] * 3
    assert [path.exists() for path in users] == [True] * 2


def test_two_processes_starting_at_once_never_both_hold_a_lock(tmp_path):
    """The lock file was created empty and written after: a second process read it as stale and took it too."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    results = []
    for trial in range(4):
        folder = tmp_path / f"f{trial}"
        if trial % 2:  # a killed run's record: both see it as stale at once
            folder.mkdir()
            record = {"pid": 4206607, "host": __import__("socket").gethostname()}  # above pid_max: dead
            (folder / ".unetkit.lock").write_text(__import__("json").dumps(record))
        with context.Pool(3) as pool:
            pool.map(abs, [0] * 3)  # the workers are up and have imported this module
            start = __import__("time").time() + 0.5  # the three try at the same moment
            results.append(pool.starmap(_hold_briefly, [(str(folder), start)] * 3))
    assert all(outcome.count("held") == 1 for outcome in results), results


def _hold_briefly(folder: str, start: float) -> str:
    import time

    from unetkit.safety.locks import acquire

    time.sleep(max(0.0, start - time.time()))
    try:
        acquire(folder, "test")
    except InputError:
        return "refused"
    time.sleep(1.0)  # holds it while the others try
    return "held"


def test_a_file_system_without_flock_still_locks_by_the_record(tmp_path, monkeypatch):
    """Lustre (noflock) or NFS without lockd answer flock with ENOSYS / ENOLCK: every command was refused as if
    another process held the lock."""
    import errno
    import fcntl

    from unetkit.safety.locks import LOCK_NAME, acquire, folder_lock

    def unsupported(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", unsupported)
    with folder_lock(tmp_path / "run", "predict"):
        assert (tmp_path / "run" / LOCK_NAME).is_file()
        with pytest.raises(InputError, match="is in use by `unetkit predict`"):  # the record of a live process
            acquire(tmp_path / "run", "predict")
    assert not (tmp_path / "run").exists()
