# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
A11Y_TOOLS := tests/a11y
export FLASK_APP := wsgi
# The port of `make run`: `make run PORT=8080` (or PORT in the environment).
PORT ?= 5000

.PHONY: run test lint install install-test db demo clean lock

# No unpinned `pip install --upgrade pip`: the venv's own pip installs the locks, and the test lock
# brings the pinned pip.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files: reinstall only when the locks change. Hash checking: every package, dependencies
# included, must be in the lock with the hash of the very file that is installed.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.txt
	touch $@

# Both locks in one call: the test lock repeats the packages it shares with the runtime (same pins).
# pip-sync then removes what the locks no longer name (a dependency dropped since the last install),
# so that the tests run on exactly the locked set (tests/test_supply_chain.py checks it).
$(VENV)/.installed-test: requirements.txt requirements-test.txt $(VENV)/.installed
	$(BIN)/pip install --quiet --require-hashes -r requirements.txt -r requirements-test.txt
	$(BIN)/pip-sync --quiet requirements.txt requirements-test.txt
	touch $@

install: $(VENV)/.installed
OIDC_TOOLS := tests/oidc
install-test: $(VENV)/.installed-test $(A11Y_TOOLS)/node_modules/.installed $(OIDC_TOOLS)/node_modules/.installed

# The accessibility stage's tools from the npm registry, exactly as locked: axe-core (run inside the
# browser) and vnu-jar (the Nu HTML checker, run with Debian's Java). No install scripts: vnu-jar's
# would download a Java runtime. Without npm the accessibility tests skip locally (fail under CI).
$(A11Y_TOOLS)/node_modules/.installed: $(A11Y_TOOLS)/package.json $(A11Y_TOOLS)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(A11Y_TOOLS) --ignore-scripts --no-audit --no-fund --loglevel=error && touch $@; \
	elif [ -n "$$CI" ]; then \
	  echo "npm is missing (apt-get install -y nodejs npm); the accessibility tests need it." >&2; exit 1; \
	else \
	  echo "npm is missing: the accessibility tests will be skipped (apt-get install -y nodejs npm)."; \
	fi

# The OpenID Provider of the single sign-on tests (oidc-provider, run by Node.js), exactly as locked,
# without install scripts. Without npm those tests skip locally (fail under CI).
$(OIDC_TOOLS)/node_modules/.installed: $(OIDC_TOOLS)/package.json $(OIDC_TOOLS)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(OIDC_TOOLS) --ignore-scripts --no-audit --no-fund --loglevel=error && touch $@; \
	elif [ -n "$$CI" ]; then \
	  echo "npm is missing (apt-get install -y nodejs npm); the single sign-on tests need it." >&2; exit 1; \
	else \
	  echo "npm is missing: the single sign-on tests will be skipped (apt-get install -y nodejs npm)."; \
	fi

db: install
	$(BIN)/flask db upgrade

demo: db
	$(BIN)/flask demo load --if-empty

# The app and, in the background, the worker (e-mails, daily jobs); Ctrl+C or the end of the app
# stops the worker too (SIGTERM: it finishes what it is doing). One shell, so the trap sees both.
run: demo
	@echo
	@$(BIN)/flask demo logins
	@echo
	@echo "Die Anwendung läuft auf http://127.0.0.1:$(PORT) (beenden mit Strg+C); der Hintergrunddienst (flask worker) läuft mit."
	@$(BIN)/flask worker & worker=$$!; \
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker' EXIT; trap 'exit 130' INT TERM; \
	$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

# One test process per core (pytest-xdist), each with a database of its own; `make test PYTEST_WORKERS=0`
# runs everything in one process. Work stealing: the browser tests wait on timers and would otherwise
# leave the other workers idle at the end.
PYTEST_WORKERS ?= auto
test: install-test
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# Lint, format check and strict typing (configuration in pyproject.toml; mypy's file list is there too).
# Only the Python tools are needed, not the accessibility tools of install-test.
LINT_PATHS := referral tests migrations benchmarks wsgi.py gunicorn.conf.py
lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

# Regenerate the locks from requirements.in and requirements-test.in (README, "Dependencies"): every pin
# already in a lock is kept, a new package gets the newest version, and `make lock UPGRADE="flask
# werkzeug"` moves those on. pip-tools itself comes hash-checked from the test lock. Needs PyPI.
UPGRADE ?=
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links $(foreach p,$(UPGRADE),--upgrade-package $(p))
lock: | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-test.txt
	$(PIP_COMPILE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --output-file requirements-test.txt requirements-test.in

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
