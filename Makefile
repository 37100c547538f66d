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

clean:
	rm -rf $(VENV) demo_out .pytest_cache
