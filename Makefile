# tether: the two commands that matter are `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint typecheck pytest bench services clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,postgres,redis]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,postgres,redis,bench]'
	@touch $@

demo: $(STAMP)
	@rm -f .demo/approval.db; mkdir -p .demo
	$(BIN)/python -m examples.approval start --db .demo/approval.db --thread demo-1
	$(BIN)/python -m examples.approval resume --db .demo/approval.db --thread demo-1 --approve

services:
	@bash scripts/ensure_services.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src

pytest: $(STAMP) services
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: $(VENV)/.bench-installed services
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .demo
