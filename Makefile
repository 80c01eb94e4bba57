# sgerun developer tasks. `make test` is the test command CI runs (as root:
# the e2e tests build a real Grid Engine lab in network namespaces).

GO ?= go

.PHONY: build test unit fuzz lab-takeover clean

build:
	$(GO) build -o bin/sgerun ./cmd/sgerun

# Everything: unit tests, hermetic SSH tests and the real-SGE e2e tests.
test:
	$(GO) test -count=1 -timeout 45m ./...

# Fast tests only (no lab; no root needed).
unit:
	$(GO) test -count=1 -short ./...

# The parsers' fuzz targets, 60 s each.
fuzz:
	$(GO) test ./inventory -run '^$$' -fuzz FuzzParse -fuzztime 60s
	$(GO) test ./runbook -run '^$$' -fuzz FuzzParse -fuzztime 60s

# Bring the local lab up and run a real takeover on it.
lab-takeover: build
	./bin/sgerun lab up
	./bin/sgerun lab ctl -- ./bin/sgerun takeover --inventory /run/sgerun-lab/sgelab/inventory.yaml --yes

clean:
	rm -rf bin
