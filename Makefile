# The two commands of the README. Both run inside the FEniCSx environment made by
# scripts/fenicsx (the host's own dolfinx >= 0.9 if it has one, else a cached Debian root).
FENICSX := scripts/fenicsx
NP ?= 2
ARGS ?=
# the whole suite once serially, then again on two ranks
PYTEST := python3 -m pytest
# the image: docker where its daemon answers, else podman (ENGINE=... to choose)
ENGINE ?= $(shell docker info >/dev/null 2>&1 && echo docker || { command -v podman >/dev/null && echo podman || echo docker; })
IMAGE ?= overhauser
SUITE ?= trixie

.PHONY: run test test-sandbox test-serial test-mpi test-next shell image bench bench-master bench-3d bench-sweep bench-fit gallery

run:
	$(FENICSX) mpirun -n $(NP) python3 -m app.run $(ARGS)

test: test-sandbox test-serial test-mpi

# the environment itself (nothing of a job outlives it), tested from outside it
test-sandbox:
	scripts/host-pytest --confcutdir=tests/sandbox -m sandbox tests/sandbox

test-serial:
	$(FENICSX) timeout 1800 $(PYTEST) $(ARGS)

test-mpi:
	$(FENICSX) timeout 1800 mpirun -n 2 $(PYTEST) --color=no $(ARGS)

# the whole suite on the next DOLFINx: a Debian sid root (built once, like trixie's)
test-next:
	FENICSX_SUITE=sid $(MAKE) test-serial test-mpi

# a shell in the environment (python, mpirun, the product on PYTHONPATH)
shell:
	$(FENICSX) bash

# the Docker image of docker/Dockerfile (docker or podman; ENGINE=podman to choose); its base
# is pulled, or made from the Debian archive where no registry answers (scripts/base-image)
image:
	scripts/base-image $(ENGINE) debian:$(SUITE)-slim $(SUITE)
	$(ENGINE) build -f docker/Dockerfile --build-arg SUITE=$(SUITE) -t $(IMAGE) $(ARGS) .

bench:
	$(FENICSX) python3 benchmarks/solver.py

bench-master:
	$(FENICSX) mpirun -n $(NP) python3 benchmarks/master.py $(ARGS)

bench-3d:
	$(FENICSX) python3 benchmarks/model3d.py slab60
	$(FENICSX) mpirun -n $(NP) python3 benchmarks/model3d.py $(ARGS)

bench-sweep:
	$(FENICSX) python3 benchmarks/sweep.py --full $(ARGS)

bench-fit:
	for what in steps heldout speedup; do $(FENICSX) python3 benchmarks/fit.py $$what $(ARGS) || exit 1; done

gallery:
	$(FENICSX) python3 scripts/update_gallery.py
