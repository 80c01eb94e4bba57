# sgerun developer tasks. `make test` is the test command CI runs (as root:
# the e2e tests build a real Grid Engine lab in network namespaces).

GO ?= go

LAB ?= sgelab
INV = /run/sgerun-lab/$(LAB)/inventory.yaml

# The version: a release tag vX.Y.Z on HEAD gives X.Y.Z; otherwise the next
# release in VERSION with the commit, e.g. 0.1.0~git20261201213102.3547e50a
# ("~" sorts before the release in dpkg and rpm alike).
GIT_COMMIT := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
GIT_TAG := $(shell git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
BUILD_DATE := $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
VERSION ?= $(if $(GIT_TAG),$(patsubst v%,%,$(GIT_TAG)),$(shell cat VERSION)~git$(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y%m%d%H%M%S).$(shell git rev-parse --short=8 HEAD 2>/dev/null || echo 0))
RELEASE ?= 1
GOARCH ?= $(shell $(GO) env GOARCH)

VPKG = github.com/sgerun/sgerun/internal/version
LDFLAGS = -s -w -X $(VPKG).version=$(VERSION) -X $(VPKG).commit=$(GIT_COMMIT) -X $(VPKG).date=$(BUILD_DATE)

# Where make package puts the .deb and .rpm (and its staging tree).
DIST ?= dist
STAGE = $(DIST)/stage
# The man pages and completions come from the packaged binary itself, or,
# when packaging for another architecture, from one built for this machine.
GEN = $(if $(filter $(GOARCH),$(shell $(GO) env GOHOSTARCH)),$(STAGE)/sgerun,$(GO) run -ldflags '$(LDFLAGS)' ./cmd/sgerun)

.PHONY: build test unit fuzz demo clean package

# A static binary (no cgo: it runs on any glibc, RHEL's and Debian's alike).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sgerun ./cmd/sgerun

# The .deb and .rpm, made by nfpm (a go tool of this module, go.mod pins it):
# the binary, man pages and completions generated from the commands, the
# systemd units (not enabled), /etc/sgerun/inventory.yaml (a conffile, 0600)
# and /var/lib/sgerun. A release: tag vX.Y.Z, or make package VERSION=X.Y.Z.
package:
	rm -rf $(STAGE) $(DIST)/sgerun*.deb $(DIST)/sgerun*.rpm && mkdir -p $(STAGE)/doc/examples $(STAGE)/systemd
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(STAGE)/sgerun ./cmd/sgerun
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GEN) __gen man $(STAGE)/man
	$(GEN) __gen completions $(STAGE)/completions
	gzip -9n $(STAGE)/man/*
	cp contrib/systemd/* $(STAGE)/systemd/
	cp inventory.example.yaml $(STAGE)/inventory.yaml
	cp packaging/copyright packaging/lintian-overrides README.md $(STAGE)/doc/
	cp contrib/nagios/sgerun.cfg contrib/cron/sgerun-check $(STAGE)/doc/examples/
	printf 'sgerun (%s-%s) unstable; urgency=medium\n\n  * Build of sgerun %s,\n    commit %s.\n\n -- sgerun developers <sgerun@example.invalid>  %s\n' \
		'$(VERSION)' '$(RELEASE)' '$(VERSION)' '$(GIT_COMMIT)' "$$(date -u -R -d @$(SOURCE_DATE_EPOCH))" \
		| gzip -9n >$(STAGE)/doc/changelog.Debian.gz
	for p in deb rpm; do \
		SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) STAGE=$(abspath $(STAGE)) VERSION='$(VERSION)' RELEASE='$(RELEASE)' GOARCH=$(GOARCH) \
		$(GO) tool nfpm package --config packaging/nfpm.yaml --packager $$p --target $(DIST)/ || exit 1; \
	done
	@ls -l $(DIST)/*.deb $(DIST)/*.rpm

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

clean:
	rm -rf bin dist
