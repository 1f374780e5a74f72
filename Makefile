# The two commands a newcomer needs:
#   make demo   runs followupd with its demo (embedded default, no AWS)
#   make test   runs every test: unit, integration against moto, end to end
.PHONY: demo test unit build load bench compare lint-template sam-build sam-local clean

GO ?= go

demo:
	$(GO) run ./cmd/followupd --demo

test:
	bash scripts/test.sh

# Quick loop while coding: unit tests only; tests needing moto or the
# Lambda emulator say how to run them and skip.
unit:
	$(GO) test -race ./...

build:
	$(GO) build -o bin/followupd ./cmd/followupd
	$(GO) build -o bin/followups-load ./cmd/followups-load

load: build
	bash scripts/load.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./shared/...

# followupd side by side with asynq on Redis and River on PostgreSQL
# (bench/, a module of its own; setup.sh installs Redis and PostgreSQL when
# missing). Flags: make compare COMPARE_FLAGS='-rounds 5 -n 20000'
compare:
	bash bench/setup.sh
	cd bench && $(GO) build -o ../bin/followups-compare ./cmd/followups-compare
	bin/followups-compare $(COMPARE_FLAGS)

lint-template:
	bash scripts/lint-template.sh

# Builds the four functions for deployment (arm64, on the host, no Docker).
sam-build:
	. scripts/aws-tools.sh && CGO_ENABLED=0 GOFLAGS=-tags=lambda.norpc sam build

# The AWS version on the real SAM CLI, with Docker, on this machine:
# start-api on 127.0.0.1:3000; Ctrl-C stops everything (README).
sam-local:
	bash scripts/sam-local.sh

clean:
	rm -rf bin .aws-sam
