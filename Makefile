# sgerun developer tasks. `make test` is the test command CI runs (as root:
# the e2e tests build a real Grid Engine lab in network namespaces).

GO ?= go

LAB ?= sgelab
INV = /run/sgerun-lab/$(LAB)/inventory.yaml

.PHONY: build test unit fuzz demo bench-takeover clean

build:
	$(GO) build -o bin/sgerun ./cmd/sgerun

# Everything: unit tests, hermetic SSH tests and the real-SGE e2e tests.
test:
	$(GO) test -count=1 -timeout 45m -parallel 3 ./...

# Fast tests only (no lab; no root needed).
unit:
	$(GO) test -count=1 -short ./...

# The parsers' fuzz targets, 60 s each.
fuzz:
	$(GO) test ./inventory -run '^$$' -fuzz FuzzParse -fuzztime 60s
	$(GO) test ./runbook -run '^$$' -fuzz FuzzParse -fuzztime 60s

# The main job on the local lab: bring up a real SGE cluster in network
# namespaces, start jobs, cut the master's scheduler network, and let sgerun
# take over on the shadow. Needs root.
demo: build
	./bin/sgerun lab --name $(LAB) up
	./bin/sgerun lab --name $(LAB) exec --user sgeuser exec1 'cd /tmp && for i in 1 2 3 4; do qsub -b y -o /dev/null -e /dev/null sleep 60; done'
	./bin/sgerun lab --name $(LAB) partition master --net sched
	./bin/sgerun lab --name $(LAB) ctl -- $(CURDIR)/bin/sgerun takeover --inventory $(INV) --yes
	./bin/sgerun lab --name $(LAB) ctl -- $(CURDIR)/bin/sgerun status --inventory $(INV)
	@echo "lab $(LAB) left running: sgerun lab status / sgerun lab down"

# The takeover benchmark on the real-SGE lab: the seed's script, sgerun
# takeover, sge_shadowd and sgerun watch, 5 rounds (root; about 2 h). It
# updates docs/performance.md.
bench-takeover:
	bench/takeover.sh -rounds 5

clean:
	rm -rf bin
