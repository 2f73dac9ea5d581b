# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint clean test-napari test-vendor

install: $(VENV)/.installed

# Re-installs when pyproject.toml or constraints.txt changes; idempotent otherwise. pyproject.toml
# holds compatible ranges (unetkit installs beside napari or bioimageio.core); constraints.txt pins the
# exact versions CI tests, so a fresh machine gets the same environment.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt -e '.[test]'
	touch $@

demo: install
	$(BIN)/unetkit demo

lint: install
	$(BIN)/ruff check unetkit tests benchmarks examples

test: install lint
	$(BIN)/pytest

# The napari plugin's tests: napari + Qt in the venv, Xvfb and Mesa for a display (apt, Debian/Ubuntu).
# Kept out of `make test`: napari adds ~600 MB to the venv and the display needs system packages.
test-napari: install
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt -c constraints-napari.txt -e '.[napari]' pytest-qt
	command -v xvfb-run >/dev/null || apt-get install -y -qq xvfb libgl1-mesa-dri libxkbcommon-x11-0 \
		libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 libxcb-xinerama0 libxcb-cursor0
	$(BIN)/python -c "import napari, pytestqt"
	xvfb-run -a $(BIN)/pytest -m napari tests/integrations

# Vendor formats (CZI, ND2, LIF) through bioio: the `vendor` extra plus bioio-ome-tiff, whose reader the
# tests use on an OME-TIFF written by tifffile. Kept out of `make test`: CI does not install bioio.
test-vendor: install
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt -e '.[vendor]' 'bioio-ome-tiff>=1.4'
	$(BIN)/pytest -m vendor tests/data

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache *.egg-info
