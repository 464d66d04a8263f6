# ARES Reward Lab. Two commands: `make run` (set up and start the app), `make test`.
# Debian's python3.11 where it has venv: its interpreter links libpython statically and ran
# this project's training ~12 % faster than pyenv's shared-library build (bench/train_speed.py).
DEBIAN_PYTHON := $(shell /usr/bin/python3.11 -c 'import venv, ensurepip' 2>/dev/null && echo /usr/bin/python3.11)
PYTHON ?= $(or $(DEBIAN_PYTHON),python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
APP_STAMP := $(VENV)/.app-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: run test bench pretrained browser clean

$(APP_STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(DEV_STAMP): $(APP_STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## Set up .venv and start the app on http://localhost:$(PORT)
run: $(APP_STAMP)
	$(PY) -m streamlit run app.py --server.port $(PORT)

## Set up .venv (and Debian's chromium for the browser tests), lint with ruff and run all tests
test: $(DEV_STAMP) browser
	$(PY) -m ruff check .
	$(PY) -m pytest

## Debian's chromium for the end-to-end tests (Playwright drives /usr/bin/chromium)
browser:
	@test -x /usr/bin/chromium || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

## Print the benchmark figures
bench: $(DEV_STAMP) browser
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

## Retrain every pre-trained agent from its checked-in config (takes a while)
pretrained: $(APP_STAMP)
	$(PY) -m envlib.pretrained --retrain

clean:
	rm -rf $(VENV) .pytest_cache
