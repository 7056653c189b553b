# The two commands of the README:
#   make demo   set up .venv and run `host-app demo` on a real bundled model
#   make test   set up .venv and run the whole test suite (C, C++, sanitizers, fuzz, Python)
# Set-up steps run only when their inputs changed (stamp files in .venv): the requirements for
# the packages, the build inputs of the cffi extension for `pip install -e .`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

# what `pip install -e .` builds from: the package metadata and the C extension's sources
INSTALL_INPUTS := setup.py pyproject.toml hailort_py/_build.py \
	$(wildcard native/include/*.h native/src/*.c native/src/*.h)
# the extension itself: reinstall when it is missing (make clean removes it)
EXTENSION := $(wildcard hailort_py/_native*.so)

.PHONY: setup demo test test-fast native clean FORCE

$(VENV)/.setup-done: requirements.txt requirements-nodeps.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -r requirements-nodeps.txt
	touch $@

$(VENV)/.install-done: $(VENV)/.setup-done $(INSTALL_INPUTS) $(if $(EXTENSION),,FORCE)
	$(PIP) install -q --no-build-isolation --no-deps -e .
	touch $@

FORCE:

setup: $(VENV)/.install-done

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
	rm -rf build *.egg-info hailort_py/_native*.so $(VENV)/.install-done
