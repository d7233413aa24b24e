# MMODA Hub: `make run` and `make test` each set everything up from nothing, then run.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Python 3.12: the pyenv shim answers only with PYENV_VERSION set; else look under pyenv root.
PYTHON312 ?= $(shell \
	for c in "$$(PYENV_VERSION=3.12.1 command -v python3.12 2>/dev/null)" \
	         "$$(pyenv root 2>/dev/null)/versions/3.12.1/bin/python3.12" \
	         "$$HOME/.pyenv/versions/3.12.1/bin/python3.12" \
	         /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	  if [ -n "$$c" ] && PYENV_VERSION=3.12.1 "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then echo "$$c"; break; fi; \
	done)

# Where `make demo` writes its products, and the demo request.
OUT ?= products/crab-demo
DEMO_ARGS ?= --src-name Crab --T1 2016-02-01 --T2 2016-03-01 --max-pointings 50 --E1 20 --E2 40

.PHONY: help venv run demo shell test lint bench clean

help:
	@echo "make run    - set up .venv and run the hub platform on 127.0.0.1 (provider, JupyterHub, gateway, services); Ctrl-C stops it"
	@echo "make demo   - set up .venv and produce an ISGRI mosaic of the Crab region in $(OUT)"
	@echo "make shell  - a shell with .venv active, so that the mmoda command is found"
	@echo "make test   - set up .venv and run the whole test suite"
	@echo "make bench  - run the benchmarks (ratios measured in one run)"

$(STAMP): pyproject.toml setup.py
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found (tried python3.12 with PYENV_VERSION=3.12.1 and pyenv root)"; exit 1; }
	PYENV_VERSION=3.12.1 $(PYTHON312) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[hub,test]'
	@# editable installs skip setup.py's data_files: enable the jupyter-server extension mmoda_ext
	install -D -m 644 jupyter-config/jupyter_server_config.d/mmoda_ext.json $(VENV)/etc/jupyter/jupyter_server_config.d/mmoda_ext.json
	@# JupyterLab without news pop-ups or update checks (no requests to the internet)
	install -D -m 644 jupyter-config/jupyter_server_config.d/mmoda_lab.json $(VENV)/etc/jupyter/jupyter_server_config.d/mmoda_lab.json
	install -D -m 644 jupyter-config/lab/settings/overrides.d/mmoda.json $(VENV)/share/jupyter/lab/settings/overrides.d/mmoda.json
	touch $(STAMP)

# The sky view's aladin-lite (npm, served by the server extension; nothing fetched at run time)
# and Debian's chromium for the browser tests (CI runs as root without stdin).
ALADIN   := $(VENV)/share/mmoda/aladin-lite/aladin.js
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(ALADIN): | $(STAMP)
	@mkdir -p $(@D)
	tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent aladin-lite@3.9.2-beta >/dev/null) \
	  && tar -xzf $$tmp/aladin-lite-3.9.2-beta.tgz -C $$tmp package/dist/aladin.js package/LICENSE \
	  && cp $$tmp/package/LICENSE $(@D)/LICENSE && cp $$tmp/package/dist/aladin.js $@ && rm -rf $$tmp

$(CHROMIUM):
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

venv: $(STAMP) $(ALADIN)

# PLATFORM_ARGS: e.g. --state hub-state (keep users and homes between runs), --tiers FILE
run: $(STAMP) $(ALADIN)
	$(BIN)/mmoda platform $(PLATFORM_ARGS)

demo: $(STAMP)
	$(BIN)/mmoda run isgri image $(DEMO_ARGS) --out $(OUT)
	@echo
	@echo "The mmoda command is installed in $(VENV)/bin. To use it: source $(VENV)/bin/activate"
	@echo "(or: make shell), then e.g. mmoda run isgri image --help, mmoda archive du."

# a shell with the venv active: mmoda, python and jupyter from .venv (exit to leave)
shell: $(STAMP)
	@echo "mmoda is on PATH in this shell ($(VENV) active); exit to leave."
	@$(SHELL) --init-file $(VENV)/bin/activate -i

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) $(ALADIN) $(CHROMIUM) lint
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=60 $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) products .pytest_cache
