# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint clean

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
	$(BIN)/ruff check unetkit tests benchmarks

test: install lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache *.egg-info
