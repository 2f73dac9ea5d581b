"""Every test gets its own empty cache folder and no CPU autotune timing (``UNETKIT_AUTOTUNE=0``): the
fast paths follow their fixed switches, so results do not depend on how busy the machine is. The tests
of ``unetkit.cpu.autotune`` turn it back on where they exercise it."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_cpu_autotune(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("UNETKIT_AUTOTUNE", "0")
    from unetkit.cpu import autotune

    autotune._decided.clear()
    yield
    autotune._decided.clear()
