# noisestat: two commands on a fresh machine.
#   make demo  - create .venv, install, run the localizer on the bundled sample image
#   make test  - install with test extras, run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
OUT    ?= demo-output

.PHONY: demo test install install-test install-bench bench lint clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# installs run again only when the package metadata changed (stamp files), quietly
QUIET  := --quiet --quiet --disable-pip-version-check

$(VENV)/.stamp-install: pyproject.toml setup.cfg | $(VENV)/bin/activate
	$(PIP) install $(QUIET) -e .
	@touch $@

$(VENV)/.stamp-install-test: pyproject.toml setup.cfg | $(VENV)/bin/activate
	$(PIP) install $(QUIET) -e ".[test,bench,onnx]"
	@touch $@ $(VENV)/.stamp-install $(VENV)/.stamp-install-bench

$(VENV)/.stamp-install-bench: pyproject.toml setup.cfg | $(VENV)/bin/activate
	$(PIP) install $(QUIET) -e ".[bench]"
	@touch $@ $(VENV)/.stamp-install

install: $(VENV)/.stamp-install
install-test: $(VENV)/.stamp-install-test
install-bench: $(VENV)/.stamp-install-bench

demo: install
	$(VENV)/bin/noisestat sample --out $(OUT)
	$(VENV)/bin/noisestat localize $(OUT)/sample.png --out $(OUT) --overwrite
	$(VENV)/bin/noisestat evaluate --pred $(OUT) --masks $(OUT)/truth
	@echo "demo outputs written to $(OUT)/"

test: install-test
	$(VENV)/bin/ruff check noisestat tests benchmarks
	$(PY) -m pytest -q -W error tests

lint: install-test
	$(VENV)/bin/ruff check noisestat tests benchmarks

bench: install-bench
	$(PY) benchmarks/bench_maps.py

clean:
	rm -rf $(OUT) build dist *.egg-info .pytest_cache
