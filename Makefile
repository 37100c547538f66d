# Two entry points: `make demo` and `make test`. Both create or refresh .venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test venv browser clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel on local disk; never torchvision.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

# Headless Chromium for the report test (Debian package); skipped when already present.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install Debian chromium; the browser test will fail"

demo: $(STAMP)
	$(VENV)/bin/revise demo --out demo_out

test: $(STAMP) browser
	$(PY) -m pytest -q -p no:cacheprovider
	# the numerics-sensitive tests again on the kernels other x86-64 CPUs get (this one may have AVX-512)
	ATEN_CPU_CAPABILITY=default $(PY) -m pytest -q -p no:cacheprovider -m numerics
	ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 $(PY) -m pytest -q -p no:cacheprovider -m numerics

clean:
	rm -rf $(VENV) demo_out .pytest_cache
