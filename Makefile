# nasd — see README.md. `make run` and `make test` are all a fresh Debian machine needs.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin

GO       ?= go
BIN      := bin/nasd
# Build tags: openblas, dnnl (oneDNN's sgemm, the fastest gemm measured here;
# it has no pkg-config file) and mpi where their libraries are there (checked
# when a recipe runs, so after `deps` installed them); TAGS= builds pure Go.
TAGS     ?= $(strip $(shell pkg-config --exists openblas 2>/dev/null && echo openblas) \
              $(shell test -f /usr/include/dnnl.h && echo dnnl) \
              $(shell pkg-config --exists ompi 2>/dev/null && echo mpi))
comma    := ,
GOFLAGS_TAGS = $(if $(strip $(TAGS)),-tags '$(subst $(space),$(comma),$(strip $(TAGS)))')
space    := $(subst ,, )
FASHION  := /usr/share/datasets/fashion-mnist
FORTUNES := /usr/share/games/fortunes
# The text corpus `make corpus` builds from FORTUNES (docs/data.md); bin/ is not tracked.
CORPUS   ?= bin/corpus/fortunes
# Debian packages the project uses: the data sets (Fashion-MNIST; fortunes, the text of the PTB-layout corpus),
# BLAS and oneDNN (gemm), OpenMPI (the default MPI) and MPICH (built and tested too, so both keep working), and
# pkg-config for cgo flags; Slurm, chromium, PyTorch and tcmalloc (the benchmarks' peer, as PyTorch's tuning guide runs it)
# for the tests and benchmarks.
DEB_PKGS := dataset-fashion-mnist fortunes libopenblas-dev libdnnl-dev openmpi-bin libopenmpi-dev mpich libmpich-dev pkgconf slurm-wlm munge slurm-wlm-torque chromium python3-torch libtcmalloc-minimal4
PYTHON   := /usr/bin/python3

.PHONY: all build build-mpi corpus deps test test-jobs test-mpi test-long soak fuzz run bench bench-lstm bench-tta bench-rnn bench-ablation bench-scale bench-enas lint clean help

all: build

help:
	@echo "make run        a small real search: the RL controller designs 8 enas-macro networks"
	@echo "make test       install what is missing, lint, run every test"
	@echo "make build      build $(BIN) (oneDNN/OpenBLAS gemm and C kernels when installed; TAGS= for pure Go)"
	@echo "make bench      training/eval throughput of the reference CNN, an enas-macro child and the LSTM language model, side by side with PyTorch"
	@echo "make bench-lstm the LSTM language model row alone (nasd vs nn.LSTM, tokens/s)"
	@echo "make bench-tta  time to 90 %/92 % test accuracy on Fashion-MNIST, reference CNN and enas child, nasd vs PyTorch (~50 min)"
	@echo "make bench-ablation  the effect of each child-training optimisation, one build per row"
	@echo "make bench-scale  rank-0 cost per trial under mpirun -n 4/16/64 (surrogate trials)"
	@echo "make bench-enas  ENAS shared-weight steps/s, Allreduce bytes and time at 1/2/4/8 workers, mpirun and in-process"
	@echo "make test-jobs  batch jobs on a real single-node Slurm started by the tests (root; run by .ci/run)"
	@echo "make test-mpi   the MPI binding and nasd search under mpirun (part of make test when MPI is there)"
	@echo "make fuzz       run every parser's fuzz target for FUZZTIME each (default 20s; FUZZMINIMIZETIME 2s)"
	@echo "make soak       SIGKILL whole mpirun jobs at random moments, resume, check the event log (docs/reliability.md)"
	@echo "make corpus     build the PTB-layout text corpus from the fortunes package into CORPUS ($(CORPUS)), and its characters into CORPUS-chars"
	@echo "make bench-rnn  searched recurrent cells vs LSTM vs random cells, 3 seeds, words and characters (~45 min)"
	@echo "make deps       install the Debian packages nasd uses (apt-get when root)"
	@echo "make lint       gofmt and go vet"

# deps installs missing Debian packages when root, or prints the exact command.
deps:
	@command -v $(GO) >/dev/null || { echo "Go is not installed: install Go ≥ 1.26 (https://go.dev/doc/install) and put it on PATH"; exit 1; }
	@missing=""; for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "deps: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	  else \
	    echo "deps: missing Debian packages:$$missing"; echo "deps: install them with: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi
	@test -d $(FASHION) || { echo "deps: $(FASHION) is missing: sudo apt-get install dataset-fashion-mnist"; exit 1; }
	@test -d $(FORTUNES) || { echo "deps: $(FORTUNES) is missing: sudo apt-get install fortunes"; exit 1; }

build:
	$(GO) build $(GOFLAGS_TAGS) -o $(BIN) ./cmd/nasd

# The text corpus in the PTB layout (ptb.train.txt, ptb.valid.txt, ptb.test.txt), ~440k words of fortunes
# split 80/10/10 by seed 1 with a 10,000-word vocabulary; tests build their own copy.
corpus: deps build
	./$(BIN) corpus -o $(CORPUS) -seed 1 -vocab 10000 -split 80,10,10 $(FORTUNES)
	./$(BIN) corpus -chars -o $(CORPUS)-chars -seed 1 -vocab 10000 -split 80,10,10 $(FORTUNES)

# Searched recurrent cells (ENAS, NAS-style) vs LSTM vs random cells, words and characters, 3 seeds (~45 min).
bench-rnn: corpus
	bench/rnn-study.sh $${OUT:-bin/bench-rnn}

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(GOFLAGS_TAGS) ./...
	@# The Go loops behind a cgo gemm (bench/ablation.sh's rows) must build too.
	$(if $(strip $(TAGS)),$(GO) vet -tags '$(subst $(space),$(comma),$(strip $(TAGS) nockernels))' ./train)

test: deps lint
	$(GO) test $(GOFLAGS_TAGS) -count=1 -timeout 20m ./...
	@# The pure-Go fallback must stay correct too.
	$(if $(strip $(TAGS)),$(GO) test -count=1 -timeout 20m ./train/... ./mpi/... ./cluster/...)
	$(if $(filter dnnl,$(TAGS)),$(GO) test -tags openblas -count=1 -timeout 20m ./train)
	@if command -v mpirun >/dev/null; then $(MAKE) --no-print-directory test-mpi; \
	 else echo "test: mpirun not found: MPI tests skipped (make deps installs openmpi-bin)"; fi

# The binding under mpirun -n 2/4/8, then nasd search under mpirun -n 4.
build-mpi:
	$(GO) build -tags '$(subst $(space),$(comma),$(strip mpi $(filter-out mpi,$(TAGS))))' -o $(BIN) ./cmd/nasd

# Batch jobs on a real single-node Slurm the tests start (scripts/slurm-ci-up.sh; root): chains across
# walltime, scancel signals, requeue, srun, qsub (~4 min). docs/jobs.md.
test-jobs: deps build-mpi
	NASD_SLURM_TESTS=1 NASD_MPI_BIN=$(CURDIR)/$(BIN) $(GO) test $(GOFLAGS_TAGS) -count=1 -timeout 20m -v -run 'Slurm|Jobs' ./cmd/nasd

test-mpi: build-mpi
	bash scripts/mpi-test.sh
	NASD_MPI_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 10m -run 'MPI' ./cmd/nasd

# Kill whole mpirun -n 5 jobs with SIGKILL at random (seeded) moments, resume, check the event log
# (docs/reliability.md). Knobs: NASD_SOAK_KILLS, NASD_SOAK_TRIALS, NASD_SOAK_SEED, NASD_SOAK_DELAY, NASD_SOAK_DIR.
soak: build-mpi
	NASD_SOAK=1 NASD_MPI_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 30m -run Soak -v ./cmd/nasd

# Every parser's fuzz target for FUZZTIME each; findings land in testdata/fuzz of the package.
# FUZZMINIMIZETIME caps minimizing each new input: at Go's default (60 s) minimizing one
# multi-kilobyte input (a TOML example, a CIFAR record) took a whole 20 s run.
FUZZTIME ?= 20s
FUZZMINIMIZETIME ?= 2s
FUZZ_TARGETS := FuzzDecode:./arch FuzzDecode:./cluster FuzzDecodePayload:./cluster FuzzLoadCheckpoint:./journal \
                FuzzReadEvents:./journal FuzzIDX:./train/dataset FuzzCIFAR:./train/dataset FuzzLoadText:./train/dataset FuzzLoadConfig:./cmd/nasd
fuzz:
	@set -eo pipefail; for t in $(FUZZ_TARGETS); do \
	  echo "== $${t%%:*} $${t#*:}"; \
	  $(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) "$${t#*:}" 2>&1 | grep -E '^(fuzz: elapsed.*execs|--- FAIL|ok|FAIL)' | tail -3; \
	done

# Slow checks that do not belong in CI's budget.
test-long: deps
	NASD_LONG=1 NASD_ENAS_QUALITY=1 $(GO) test $(GOFLAGS_TAGS) -count=1 -timeout 120m ./...

# A small real search: the RL controller designs 8 enas-macro networks, 2 in-process workers.
RUN_DIR ?= runs/quick-$(shell date +%Y%m%d-%H%M%S)
run: deps build
	./$(BIN) search -config examples/quick.toml -run-dir $(RUN_DIR)

bench: deps
	@$(PYTHON) -c 'import torch' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch >/dev/null; \
	  else echo "bench: PyTorch peer missing: sudo apt-get install python3-torch"; exit 1; fi; }
	GO="$(GO)" TAGS="$(TAGS)" PYTHON=$(PYTHON) bash bench/run.sh
	GO="$(GO)" TAGS="$(TAGS)" PYTHON=$(PYTHON) bash bench/lstm.sh

# The LSTM language model row alone: nasd vs PyTorch's nn.LSTM on the same text.
bench-lstm: deps
	@$(PYTHON) -c 'import torch' 2>/dev/null || { echo "bench-lstm: PyTorch peer missing: sudo apt-get install python3-torch"; exit 1; }
	GO="$(GO)" TAGS="$(TAGS)" PYTHON=$(PYTHON) bash bench/lstm.sh

# Time to accuracy (issue 13 §3): the reference CNN and the enas-macro child trained by nasd train and by PyTorch with
# the same schedule on all of Fashion-MNIST, seconds to 90 % and 92 % test accuracy (docs/performance.md). ~50 min at
# the defaults. Knobs: THREADS (2), NETS, EPOCHS (15), BATCH (64), LR (0.02), SCHEDULE, WD, TARGETS, PEER_ALLOC.
bench-tta: deps
	@$(PYTHON) -c 'import torch' 2>/dev/null || { echo "bench-tta: PyTorch peer missing: sudo apt-get install python3-torch"; exit 1; }
	GO="$(GO)" TAGS="$(TAGS)" PYTHON=$(PYTHON) bash bench/tta.sh

# One build per optimisation (pure Go, + OpenBLAS, + oneDNN, + C kernels) and the executor against the TapeMachine.
bench-ablation: deps
	GO="$(GO)" bash bench/ablation.sh

bench-scale: build
	GO="$(GO)" BIN=$(CURDIR)/$(BIN) bash bench/scale.sh

# ENAS's shared-weight phase at WORKERS (default 1 2 4 8) workers, mpirun -n P+1 and in-process, on
# Fashion-MNIST (docs/performance.md, "ENAS across ranks"). Knobs: WORKERS, MODES, STEPS, BATCH, LAYERS, CHANNELS.
bench-enas: deps
	$(if $(filter mpi,$(TAGS)),$(MAKE) --no-print-directory build-mpi,$(MAKE) --no-print-directory build)
	GO="$(GO)" BIN=$(CURDIR)/$(BIN) bash bench/enas.sh

clean:
	rm -rf bin
