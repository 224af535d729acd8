# The two set-up commands: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: run test lint audit lock bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# requirements.lock pins what production runs (see `make lock`); installs follow it.
$(VENV)/.installed-run: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install -q -c requirements.lock -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install -q -c requirements.lock -e '.[test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/hoviyat init
	$(BIN)/hoviyat ca init
	$(BIN)/hoviyat serve --host 127.0.0.1 --port 8000

# One list for `make lint`, `make test` and .pre-commit-config.yaml: what is
# linted, what is type-checked (tests too; the packages' own strictness is set
# per package in pyproject.toml), and the import contracts (pyproject.toml).
LINTED := idp ca verifiers policies tests bench deploy
TYPED  := idp ca verifiers policies tests

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy $(TYPED)
	$(BIN)/lint-imports --no-cache

# pip-audit over requirements.lock and bandit over the server code; findings not
# excepted with a reason in .ci/security-exceptions.toml fail.
audit: $(VENV)/.installed-test
	$(BIN)/python .ci/security_audit.py

# Re-pin requirements.lock to the newest releases, from a clean runtime install
# (no build tools, no test extras).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip && .lock-venv/bin/pip install -q .
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^hoviyat' > requirements.lock
	rm -rf .lock-venv

bench: $(VENV)/.installed-test
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .hoviyat .pytest_cache
