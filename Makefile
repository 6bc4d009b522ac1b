# make demo  -- virtual environment, install, synthetic set -> ingest -> statistics -> train a tiny
#              CTC model for a few minutes -> validation normalized Levenshtein
# make test  -- virtual environment, install, the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
DEMO := runs/demo

.PHONY: install tpu-compiler demo test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

demo: install
	$(PY) -m aslx.synthetic --out $(DEMO)/raw --phrases 400 --signers 10 --seed 0
	$(PY) -m aslx.ingest --format kaggle-fingerspelling --src $(DEMO)/raw --out $(DEMO)/records \
		--val-fraction 0.2 --shards 8 --overwrite
	$(PY) -m aslx.stats --data $(DEMO)/records --preset kaggle75 --max-frames 128
	$(PY) -m finetune.main --config configs/finetune_tiny.py --workdir $(DEMO)/finetune \
		--config.data.dir=$(DEMO)/records

# One pytest worker per core (at most 4), whole files per worker so module fixtures are built
# once, handed out in the order tests/conftest.py gives (the slowest files first, not xdist's
# largest first); most of the suite's time is single-threaded XLA compilation.
# libtpu, the TPU compiler that python -m aslx.aot compiles with (wheels for Linux x86-64 only),
# beside the environment rather than in it: importable, it makes every JAX process look for a TPU.
LIBTPU := libtpu==0.0.42.*
tpu-compiler: $(VENV)/libtpu/.installed

$(VENV)/libtpu/.installed: $(VENV)/.installed
	if [ "$$(uname -sm)" = "Linux x86_64" ]; then \
		$(PY) -m pip install --quiet --no-deps --target $(VENV)/libtpu '$(LIBTPU)'; fi
	mkdir -p $(VENV)/libtpu
	touch $@

test: install tpu-compiler
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder --durations 15 tests

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) benchmarks/input_pipeline.py --json runs/bench/input_pipeline.json

clean:
	rm -rf $(VENV) runs
