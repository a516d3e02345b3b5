# The two commands of the README:  `make demo`  and  `make test`.
# Both create .venv on first use. torch is pinned to the CPU wheel through
# constraints/cpu.txt; GPU users install the package with their own torch instead
# (see README: "On a GPU").

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The report's browser test drives Debian's chromium through chromedriver.
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BROWSER_PKGS := chromium chromium-driver

.PHONY: install browser demo test test-slow clean

$(STAMP): pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints/cpu.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/curator demo

# Installs chromium + chromedriver from Debian packages when they are missing and apt-get exists;
# elsewhere the browser test is skipped with a message (install any Chromium and chromedriver).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
	  echo "installing Debian $(BROWSER_PKGS) for the report's browser test"; \
	  $(SUDO) apt-get install -y -qq $(BROWSER_PKGS) >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(BROWSER_PKGS) >/dev/null; }; \
	else echo "no chromium and no apt-get: the report's browser test will be skipped"; fi

test: $(STAMP) browser
	$(BIN)/python -m pytest

test-slow: $(STAMP) browser
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf $(VENV) curator.duckdb curator.duckdb.wal
