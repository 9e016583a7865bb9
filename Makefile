# The two promises of README.md: `make run` and `make test`, on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RUN_STAMP  := $(VENV)/.run-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: run test test-unit test-integration lint format install clean bench

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[postgres]'
	touch $@

$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[test]'
	touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)

run: $(RUN_STAMP)
	$(VENV)/bin/llmgw up

# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
test: $(TEST_STAMP)
	$(PY) -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 1; fi; exit $$rc

# The inner loop: unit tests only, two processes, no socket beyond loopback.
test-unit: $(TEST_STAMP)
	$(PY) -m pytest -q -n 2 --allow-hosts=127.0.0.1,localhost,::1 tests/unit; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 1; fi; exit $$rc

test-integration: $(TEST_STAMP)
	$(PY) -m pytest -q -m integration tests/integration; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 1; fi; exit $$rc

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@ $(TEST_STAMP) $(RUN_STAMP)

# The performance figures (docs/performance.md), each benchmark printing JSON and a summary
# line per figure, sized to finish in a few minutes; bigger runs: python -m bench.<name> --help.
BENCH_OUT ?= var/bench
bench: $(BENCH_STAMP)
	mkdir -p $(BENCH_OUT)
	bash -o pipefail -c '$(PY) -m bench.throughput --jobs 1000 --latency 1 --threads 200 | tee $(BENCH_OUT)/throughput.out'
	bash -o pipefail -c '$(PY) -m bench.latency --rounds 300 | tee $(BENCH_OUT)/latency.out'
	bash -o pipefail -c '$(PY) -m bench.memory --in-flight 2000 --soak-seconds 60 | tee $(BENCH_OUT)/memory.out'

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(TEST_STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
