# The two set-up commands: `make demo` and `make test`. Both work on a fresh machine.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.stamp-dev
PYTEST_ARGS ?=

.PHONY: test demo lint typecheck bench redis chromium clean

# pip >= 25.1 reads PEP 735 dependency groups (`--group dev`); the venv's own pip may be older.
$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade 'pip>=25.1'

# Every extra plus the dev tools (the `dev` dependency group in pyproject.toml).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[all]' --group dev
	@touch $(STAMP)

# Debian's redis-server for the Redis ledger tests (a real server, no fake).
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
	  else echo "redis-server is missing: sudo apt-get install redis-server"; exit 1; fi; }

# Debian's chromium for the dashboard's browser test (playwright drives it; it never downloads a browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install chromium"; exit 1; fi; }

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy cfgateway langchain_cfgateway llama_index_cfgateway examples bench

test: $(STAMP) redis chromium lint typecheck
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

# Migration scenario 2 (docs/migrate-openai-to-workers-ai.md) on the embedded emulator when no credentials are set.
demo: $(STAMP)
	$(PY) examples/openai_to_workers_ai.py

bench: $(STAMP)
	$(PY) bench/overhead.py

clean:
	rm -rf $(VENV) build dist *.egg-info
