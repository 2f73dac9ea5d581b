"""Every test session gets its own empty cache folder and no CPU autotune timing (``UNETKIT_AUTOTUNE=0``):
the fast paths follow their fixed switches, so results do not depend on how busy the machine is. The
tests of ``unetkit.cpu.autotune`` turn it back on where they exercise it (each with an empty cache)."""

import importlib.util

import pytest

# The napari plugin's tests need napari, Qt and a display: `make test-napari` installs them and runs
# that module under Xvfb. `make test` leaves the module out instead of reporting it as skipped.
collect_ignore = []
if importlib.util.find_spec("napari") is None:
    collect_ignore.append("integrations/test_napari.py")
# The bioio reader tests need the vendor extra and bioio-ome-tiff: `make test-vendor` installs and runs them.
if importlib.util.find_spec("bioio") is None or importlib.util.find_spec("bioio_ome_tiff") is None:
    collect_ignore.append("data/test_vendor_bioio.py")


@pytest.fixture(scope="session", autouse=True)
def _no_cpu_autotune_by_default(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:  # session-wide: module fixtures that train see it too
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        patch.setenv("UNETKIT_AUTOTUNE", "0")
        yield


@pytest.fixture(autouse=True)
def _empty_cpu_autotune_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    from unetkit.cpu import autotune

    autotune._decided.clear()
    yield
    autotune._decided.clear()
