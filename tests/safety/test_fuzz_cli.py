"""Issue 15: property-based fuzzing of the CLI with hypothesis.

Random files as images (random bytes, random shapes, dtypes and channel counts, NaN/Inf values) and
random option values. The invariant: exit 0 with finite outputs, or exit 2 with one error line; never an
exception (exit 1), never an input file changed. Bounded: a few dozen small examples, seconds in all.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from unetkit.cli import main  # noqa: E402

FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DTYPES = ("uint8", "uint16", "int16", "float32", "float64", "bool")


@st.composite
def image_files(draw) -> tuple[str, bytes | np.ndarray]:
    """(file name, raw bytes) or (file name, array to save): random bytes, or random arrays of any dtype."""
    kind = draw(st.sampled_from(["bytes", "array", "array"]))
    suffix = draw(st.sampled_from([".png", ".tif"]))
    if kind == "bytes":
        head = draw(st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*"]))
        return f"img{suffix}", head + draw(st.binary(min_size=0, max_size=200))
    dtype = draw(st.sampled_from(DTYPES))
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    channels = draw(st.sampled_from([None, 1, 3, 4]))
    shape = (height, width) if channels is None else (height, width, channels)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype == "bool":
        array = rng.random(shape) > 0.5
    elif dtype.startswith("float"):
        array = (rng.random(shape) * draw(st.sampled_from([1.0, 255.0, 1e30]))).astype(dtype)
        specials = draw(st.lists(st.sampled_from([np.nan, np.inf, -np.inf]), max_size=3))
        for value in specials:
            array.flat[int(rng.integers(array.size))] = value
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    if suffix == ".png" and (dtype not in ("uint8", "uint16") or (dtype == "uint16" and channels not in (None, 1))):
        suffix = ".tif"  # Pillow writes no other PNG; a TIFF takes them all
    return f"img{suffix}", array


def _write(folder: Path, name: str, content) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif path.suffix == ".png":
        from PIL import Image

        Image.fromarray(content.squeeze(-1) if content.ndim == 3 and content.shape[-1] == 1 else content).save(path)
    else:
        import tifffile

        tifffile.imwrite(path, content, photometric="minisblack" if content.ndim == 2 or content.shape[-1] != 3
                         else "rgb")
    return path


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def _check_outcome(code: int, err: str, command: str) -> None:
    assert code in (0, 2), f"exit {code}: {err}"
    if code == 2:
        lines = [line for line in err.replace("\r", "\n").splitlines() if "error:" in line]
        assert len(lines) == 1 and lines[0].startswith(f"unetkit {command}: error: "), err
        assert "Traceback" not in err


options = st.fixed_dictionaries({}, optional={
    "--tile": st.integers(-64, 96).map(str),
    "--overlap": st.one_of(st.floats(-1.0, 2.0), st.just(float("nan"))).map(str),
    "--batch": st.integers(-2, 6).map(str),
    "--nan-policy": st.sampled_from(["error", "zero", "nearest"]),
})


@FUZZ
@given(files=st.lists(image_files(), min_size=1, max_size=2), chosen=options)
def test_predict_never_fails_silently_or_with_a_traceback(run_dir, files, chosen):
    import tifffile

    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        for index, (name, content) in enumerate(files):
            _write(inputs, f"{index}_{name}", content)
        before = _digest(inputs)
        out = Path(tmp) / "out"
        argv = ["predict", "--model", str(run_dir), str(inputs), "--out", str(out), "--quiet"]
        argv += [f"{key}={value}" for key, value in chosen.items()]  # "=": argparse takes -1e-5 for an option
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        _check_outcome(code, err.getvalue(), "predict")
        assert _digest(inputs) == before, "an input file changed"
        if code == 0:
            probabilities = sorted((out / "probabilities").iterdir())
            assert len(probabilities) == len(files)
            for path in probabilities:
                assert np.isfinite(tifffile.imread(path)).all(), path
            assert not [p for p in out.rglob("*") if ".tmp" in p.name or p.name == ".unetkit.lock"]


@FUZZ
@given(files=st.lists(image_files(), min_size=1, max_size=2))
def test_submit_and_weights_never_fail_with_a_traceback(files):
    import contextlib
    import io

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "labels"
        folder.mkdir()
        paths = [_write(folder, f"{index}_{name}", content) for index, (name, content) in enumerate(files)]
        before = _digest(folder)
        for command, argv in (("submit", ["submit", "--pred", str(folder), "--out", str(Path(tmp) / "s.csv")]),
                              ("weights", ["weights", "--labels", str(paths[0]), "--out", str(Path(tmp) / "w.tif")])):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
            _check_outcome(code, err.getvalue(), command)
        assert _digest(folder) == before


def _config_keys() -> list[str]:
    import dataclasses

    from unetkit.config import RunConfig

    keys = []
    for section in dataclasses.fields(RunConfig):
        value = getattr(RunConfig(), section.name)
        if dataclasses.is_dataclass(value):
            keys += [f"{section.name}.{f.name}" for f in dataclasses.fields(value)]
        else:
            keys.append(section.name)
    return keys


yaml_values = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["true", "false", "null", "[]", "[0]", "[1, 2]", "[[1, 2]]", "{a: 1}", "''", "auto", "none",
                     ".nan", ".inf", "-.inf", "1e400", "[1, x]", "[-1]", "0.5", "256"]),
    st.text(alphabet="abc01-.[]", max_size=6))


@FUZZ
@given(items=st.lists(st.tuples(st.sampled_from(_config_keys()), yaml_values), min_size=1, max_size=4))
def test_any_override_gives_a_valid_config_or_one_input_error(items):
    """--set values are checked when the config is built: a bad one is an InputError, never another error,
    and an accepted config passes the checks again when read back from its dict (as from a checkpoint)."""
    from unetkit.config import RunConfig, apply_overrides, from_dict, to_dict
    from unetkit.errors import InputError

    try:
        config = apply_overrides(RunConfig(), [f"{key}={value}" for key, value in items])
    except InputError as error:
        assert "\n" not in str(error).strip()
        return
    assert from_dict(to_dict(config)) == config


@st.composite
def npy_images(draw) -> np.ndarray | bytes:
    """Random .npy content: arrays of 1 to 4 axes, any dtype, NaN/Inf, or random bytes."""
    if draw(st.booleans()) and draw(st.booleans()):
        return b"\x93NUMPY" + draw(st.binary(max_size=64))
    shape = tuple(draw(st.lists(st.integers(1, 24), min_size=1, max_size=4)))
    dtype = draw(st.sampled_from(DTYPES + ("complex64",)))
    array = np.random.default_rng(draw(st.integers(0, 2**16))).random(shape).astype(dtype)
    if array.dtype.kind == "f" and array.size:
        array.flat[0] = draw(st.sampled_from([0.5, np.nan, np.inf]))
    return array


@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(content=npy_images(), chosen=st.fixed_dictionaries({}, optional={
    "--tile": st.integers(-8, 64).map(str), "--strip": st.integers(-2, 64).map(str),
    "--chunk": st.integers(-2, 32).map(str), "--halo": st.integers(-3, 8).map(str),
    "--nan-policy": st.sampled_from(["error", "zero", "nearest"])}))
def test_predict_large_never_fails_silently_or_with_a_traceback(run_dir, content, chosen):
    import contextlib
    import io

    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "x.npy"
        if isinstance(content, bytes):
            image.write_bytes(content)
        else:
            np.save(image, content)
        before = image.read_bytes()
        out, labels = Path(tmp) / "p.npy", Path(tmp) / "l.npy"
        argv = ["predict-large", str(image), "--model", str(run_dir), "--out", str(out), "--instances", str(labels),
                "--quiet", *[f"{key}={value}" for key, value in chosen.items()]]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        _check_outcome(code, err.getvalue(), "predict-large")
        assert image.read_bytes() == before
        if code == 0:
            assert np.isfinite(np.load(out)).all() and np.load(labels).shape == np.load(out).shape[1:]
