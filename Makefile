# The two commands of the README:
#   make demo   set up .venv and run `host-app demo` on a real bundled model
#   make test   set up .venv and run the whole test suite (C, C++, sanitizers, fuzz, Python)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: setup demo test test-fast native clean

$(VENV)/.setup-done: requirements.txt requirements-nodeps.txt setup.py pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -r requirements-nodeps.txt
	touch $@

setup: $(VENV)/.setup-done
	$(PIP) install -q --no-build-isolation --no-deps -e .

native:
	$(MAKE) -C native

demo: setup
	$(VENV)/bin/host-app demo

test: setup native
	$(PY) -m pytest -q

# the fast tier: stream layer, tiny synthetic networks, error paths (< 2 min on 2 cores)
test-fast: setup native
	$(PY) -m pytest -q -m "not slow and not real_model"

clean:
	$(MAKE) -C native clean
	rm -rf build *.egg-info hailort_py/_native*.so
