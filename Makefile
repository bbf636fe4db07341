# The two commands of the README's quick start:
#   make run    installs (first time, or when pyproject.toml changed) and runs the bot
#   make test   installs the same way and runs the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false

.PHONY: run test install bench clean

run: $(STAMP)
	$(BIN)/aibot run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "aibot needs Python 3.11 or newer (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,test]'
	@# an editable install is not byte-compiled; where PYTHONDONTWRITEBYTECODE is set, every
	@# `aibot` command would compile the sources again (~0.1-0.3 s of each start)
	$(BIN)/python -m compileall -q bot patterns adapters migrations > /dev/null
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/python bench/console_overhead.py
	$(BIN)/python bench/agent_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache
