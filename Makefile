# capsight: `make demo` and `make test` do everything on a fresh machine.
#
#   make demo    create .venv, install capsight with its extras, analyse the bundled sample video
#   make test    install if needed, run the test suite
#   make install create .venv and install capsight with its extras (demo and test do it first)
#   make lint    ruff check and ruff format --check
#   make lock    pin constraints.txt to the versions installed in .venv
#   make bench   the speed benchmark (prints its tables; benchmarks/speed.py --write docs/speed.md writes them)
#   make serve   the HTTP API and web UI (capsight serve)
#   make captioner  retrain the shipped captioner on Flickr8k (~2.5 h on one CPU core; see
#                docs/MODEL_CARD.md) into runs/; FLICKR8K=path to the data
#   make captioner-pair  retrain the photo default show-attend-tell-pair into runs/ (~5 h on a
#                CPU, then captioner-e2e for its second member; see docs/MODEL_CARD.md)
#   make captioner-e2e   train the pair's end-to-end Lite2 member into runs/ (9 min on a GPU,
#                about half a day on 2 CPU cores)
#   make captioner-prefix  retrain the shipped prefix-gpt2 (~75 min on 2 cores) into runs/
#   make clean   delete the demo's output and the tools' caches
#   make help    this list
#
# Installing runs once: it leaves a stamp in .venv and runs again only when pyproject.toml or
# constraints.txt changes. Where pip's index serves CUDA builds of torch (plain PyPI on Linux),
# name the CPU index: `make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu`.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.capsight-installed
EXTRAS ?= dev,train,serve,bench,lite12,ray
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
SAMPLE := src/capsight/data/sample.mp4
DEMO_OUT ?= out/demo
FLICKR8K ?= ../shared/data/flickr8k

.PHONY: all demo test lint lock serve bench captioner captioner-pair captioner-e2e captioner-prefix install clean help

all: demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first and pinned, from TORCH_INDEX when one is named: from plain PyPI on Linux even the
# pinned version pulls several GB of CUDA packages; this project's index serves the CPU build.
# The other packages at the versions in constraints.txt, the ones CI last passed with.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

install: $(STAMP)

# constraints.txt from what .venv holds now (after a pyproject.toml change: `make install`, then this).
# pip freeze goes to a file first: a failure in a pipe would go unnoticed (sh has no pipefail).
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable > constraints.txt.freeze
	{ sed -n 1,2p constraints.txt; sed 's/^torch==\(.*\)+cpu$$/torch==\1/' constraints.txt.freeze; } \
	    > constraints.txt.new
	rm constraints.txt.freeze
	mv constraints.txt.new constraints.txt

demo: $(STAMP)
	$(BIN)/capsight video $(SAMPLE) --out $(DEMO_OUT)
	@echo
	@echo "Open the report: file://$(abspath $(DEMO_OUT))/report.html"

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/python benchmarks/speed.py --repeats 5

serve: $(STAMP)
	$(BIN)/capsight serve

# The shipped show-attend-tell: cross-entropy and SCST (runs/sat-flip), then SCST scored with an
# end word (runs/sat-flip-eos). Both resume where they stopped when run again. Then the test
# scores, and the test photos captioned by the new model and the shipped one, paired.
captioner: $(STAMP)
	$(BIN)/capsight train $(FLICKR8K) --out runs/sat-flip --epochs 8 --flip --seed 7 \
	    --scst-epochs 8 --scst-lr 5e-5 --scst-top-k 5 --patience 8 --resume
	$(BIN)/capsight train $(FLICKR8K) --out runs/sat-flip-eos --init-from runs/sat-flip/best \
	    --epochs 0 --flip --seed 7 --scst-epochs 6 --scst-lr 5e-5 --scst-top-k 5 --scst-end-token --resume
	$(BIN)/python -m capsight.training.cached_eval $(FLICKR8K) runs/sat-flip-eos/best --split test \
	    --full --decoding greedy beam:3 beam:5
	$(BIN)/capsight eval $(FLICKR8K) --split test --model runs/sat-flip-eos/best --beam 3 \
	    --against show-attend-tell

# The photo default show-attend-tell-pair. Its first member (m0): Lite0 features with the
# encoder's last 2 blocks fine-tuned, 7 cross-entropy epochs, then 5 + 6 SCST epochs with the end
# word, then 1 SCST epoch as one policy (ensemble_scst) beside a Lite2 decoder on frozen features
# (7 cross-entropy, 5 SCST and 6 end-word SCST epochs; the pair's m1 until 2026-12-04). Its second
# (m1 since 2026-12-04): the end-to-end Lite2 captioner of captioner-e2e, a GPU job. Then the pair
# is exported to runs/pair and scored on the validation photos. See docs/MODEL_CARD.md.
FT := --fine-tune-blocks 2 --fine-tune-lr-ratio 0.2 --seed 42
SCST_EOS := --epochs 0 --scst-lr 5e-5 --scst-top-k 5 --scst-end-token --resume
captioner-pair: $(STAMP)
	$(BIN)/capsight train $(FLICKR8K) --out runs/sat-ftce --epochs 7 $(FT) --resume
	$(BIN)/capsight train $(FLICKR8K) --out runs/sat-ftce-eos --init-from runs/sat-ftce/best \
	    $(FT) --scst-epochs 5 $(SCST_EOS)
	$(BIN)/capsight train $(FLICKR8K) --out runs/sat-ftce-eos2 --init-from runs/sat-ftce-eos/best \
	    $(FT) --scst-epochs 6 $(SCST_EOS)
	$(BIN)/capsight train $(FLICKR8K) --out runs/sat-lite2 --encoder efficientnet-lite2 --epochs 7 --resume
	$(BIN)/capsight train $(FLICKR8K) --out runs/sat-lite2-scst --init-from runs/sat-lite2/best \
	    --encoder efficientnet-lite2 --epochs 0 --scst-epochs 5 --scst-lr 5e-5 --resume
	$(BIN)/capsight train $(FLICKR8K) --out runs/sat-lite2-eos --init-from runs/sat-lite2-scst/best \
	    --encoder efficientnet-lite2 --epochs 0 --scst-epochs 6 --scst-lr 5e-5 --scst-end-token --resume
	$(BIN)/python -m capsight.training.ensemble_scst $(FLICKR8K) runs/sat-ftce-eos2/best \
	    runs/sat-lite2-eos/best --out runs/pair-scst --epochs 1 --lr 2.5e-5 --resume
	$(MAKE) captioner-e2e
	$(BIN)/python -m capsight.training.export runs/pair-scst/best/m0 runs/e2e-lite2/best \
	    --to runs/pair --decoding beam:4
	$(BIN)/python -m capsight.training.features $(FLICKR8K) --encoder efficientnet-lite2 \
	    --encoder-weights runs/pair/m1/encoder.safetensors
	$(BIN)/python benchmarks/pair_validation.py runs/pair/m0 runs/pair/m1 --data $(FLICKR8K)
	$(BIN)/capsight eval $(FLICKR8K) --split val --model runs/pair

# GPU: the whole Lite2 encoder trained with a decoder from the photos (training.end_to_end), 7
# cross-entropy epochs, then SCST until 3 epochs bring no gain on the first 250 validation photos
# (10 epochs, best at 7, for the shipped m1). 8.5 min on an H200 beside a second such run
# (2026-12-04); on 2 CPU cores ~12 s per step of 32 photos: about half a day. That run also had
# --time-limit 515 --xe-time-share 0.5 to fit the GPU's lease; neither bound (all 7 cross-entropy
# epochs ran, and SCST stopped on --patience), so the recipe leaves them out.
captioner-e2e: $(STAMP)
	$(BIN)/python -m capsight.training.end_to_end $(FLICKR8K) --out runs/e2e-lite2 \
	    --encoder efficientnet-lite2 --vocab-from src/capsight/models/show-attend-tell-pair/m0 \
	    --epochs 7 --scst-epochs 40 --patience 3 --max-val-images 250 --seed 42 --resume

# The shipped prefix-gpt2: Lite0 grid cells as the prefix of a 4-layer, 256-wide GPT-2 trained
# from scratch on the captions, 6 cross-entropy epochs (~75 min on 2 cores), then exported.
captioner-prefix: $(STAMP)
	$(BIN)/capsight train $(FLICKR8K) --out runs/prefix-a --architecture prefix-gpt2 --epochs 6 \
	    --seed 42 --resume
	$(BIN)/python -m capsight.training.export runs/prefix-a/best --to runs/prefix-gpt2 --decoding beam:3

clean:
	rm -rf out/demo .pytest_cache .ruff_cache

help:
	@sed -n '3,/^#$$/p' Makefile | sed '$$d; s/^#//'

