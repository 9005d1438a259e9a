# Every target uses the project's own environment in .venv/, creating it on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.memcorpus-installed
export HF_HUB_OFFLINE ?= 1
export YOLO_OFFLINE ?= 1
export RAY_USAGE_STATS_ENABLED ?= 0

.PHONY: setup demo demo-memento demo-multicam report test bench soak experiment-memory gpu-check lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[cpu-backends,dev]'
	@# the report test renders in Debian's headless chromium; without it that one test skips
	scripts/ensure_chromium.sh || echo "WARNING: chromium not installed; the report rendering test will skip"
	touch $(STAMP)

demo: setup  ## the main job: Señorita-Long on generated pairs, embedded Ray, tiny models
	$(PY) pipelines/build_senorita_long.py

demo-memento: setup
	$(PY) pipelines/build_memento_corpus.py

demo-multicam: setup
	$(PY) pipelines/build_multicam_corpus.py

report: setup  ## the HTML dataset report of the demo corpus
	$(VENV)/bin/memcorpus report out/senorita_long

test: setup
	$(PY) -m pytest -q --durations=15

bench: setup
	$(PY) benchmarks/run_all.py

soak: setup
	$(PY) benchmarks/soak.py

experiment-memory: setup
	$(PY) -m training.experiment_memory

gpu-check: setup  ## every model stage + training steps on one CUDA GPU, tiny random models; table in $$OUT or bench_out/
	$(PY) scripts/gpu_check.py

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf out bench_out .pytest_cache
