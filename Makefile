# authgate — Makefile in the kubebuilder manner. `make help` lists targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

GO        ?= go
BIN       := $(CURDIR)/bin
GOBIN_ENV := GOBIN=$(BIN)
export PATH := $(BIN):$(PATH)

# Pinned tool versions, installed into ./bin.
GOLANGCI_LINT_VERSION   ?= v2.6.2
HELM_VERSION            ?= v3.22.0
KUSTOMIZE_VERSION       ?= v5.8.2
CONTROLLER_TOOLS_VERSION ?= v0.23.0
# Prometheus's Go module is v0.3xx.y for release 3.xx.y; only promtool is built.
PROMTOOL_VERSION        ?= v0.316.0
CONTROLLER_GEN          := $(BIN)/controller-gen

# envtest: a real kube-apiserver and etcd, built from Go modules into ./bin/k8s
# (see hack/envtest.sh); tests find them through KUBEBUILDER_ASSETS.
ENVTEST_DIR := $(BIN)/k8s
export KUBEBUILDER_ASSETS ?= $(ENVTEST_DIR)

FUZZTIME       ?= 3s
FUZZTIME_LONG  ?= 2m
TEST_FLAGS     ?= -race -count=1
PKGS           := ./...

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Demo

.PHONY: demo
demo: ## Run the local demo: dev OIDC issuer, sample function, proxy, real requests. KEEP=1 keeps it running.
	$(GO) run ./cmd/authgate demo $(if $(KEEP),--keep,)

.PHONY: demo-cluster
demo-cluster: envtest cluster-components helm ## The real thing: the make e2e node, helm install, Knative Serving, the examples, real requests. KEEP=1 keeps it running. Needs root.
	./hack/cluster/demo.sh

.PHONY: demo-cluster-down
demo-cluster-down: ## Stop what KEEP=1 make demo-cluster left running.
	./hack/cluster/demo.sh down

.PHONY: demo-apiserver
demo-apiserver: envtest ## Without root or a kubelet: real kube-apiserver + etcd, controller, AuthPolicies applied, proxy reading the rendered config.
	$(GO) run ./cmd/authgate-demo-cluster

##@ Development

.PHONY: fmt
fmt: ## Format the code.
	$(GO) fmt $(PKGS)

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet $(PKGS)

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	$(BIN)/golangci-lint run $(PKGS)

.PHONY: generate
generate: manifests helm ## Regenerate every generated file: deepcopy, CRD, RBAC, config reference, the kustomize alerts.
	$(CONTROLLER_GEN) object:headerFile=/dev/null paths=./api/...
	$(GO) run ./hack/configdoc > docs/config-reference.md
	./hack/sync-alerts.sh

.PHONY: manifests
manifests: controller-gen ## Generate the CRD (config/crd/bases) and RBAC (config/rbac) from markers.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=authgate-controller paths=./controllers/... output:rbac:artifacts:config=config/rbac
	./hack/sync-chart-crds.sh

.PHONY: verify
verify: controller-gen helm ## Fail when a generated file is stale or code is unformatted.
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	  $(CONTROLLER_GEN) object:headerFile=/dev/null paths=./api/... output:object:dir=$$tmp/api >/dev/null && \
	  diff -u api/v1alpha1/zz_generated.deepcopy.go $$tmp/api/zz_generated.deepcopy.go && \
	  $(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=$$tmp/crd && \
	  diff -ru config/crd/bases $$tmp/crd && \
	  $(CONTROLLER_GEN) rbac:roleName=authgate-controller paths=./controllers/... output:rbac:artifacts:config=$$tmp/rbac && \
	  diff -u config/rbac/role.yaml $$tmp/rbac/role.yaml && \
	  $(GO) run ./hack/configdoc | diff -u docs/config-reference.md - && \
	  ./hack/sync-chart-crds.sh --check && \
	  ./hack/sync-alerts.sh --check \
	  || { echo "generated files are stale: run make generate"; exit 1; }
	@out="$$(find . -name '*.go' -not -path './bin/*' -not -path './.git/*' -print0 | xargs -0 gofmt -l)"; \
	  test -z "$$out" || { echo "unformatted files (run make fmt):"; echo "$$out"; exit 1; }

##@ Test

.PHONY: test
test: vet verify lint unit alerts-test fuzz-smoke linkcheck ## Run every test (what CI runs).

.PHONY: unit
unit: envtest helm kustomize redis-server otlpsink ## Run unit and integration tests (real kube-apiserver + etcd, helm, kustomize, redis-server, the OTLP receiver) with the race detector.
	$(GO) test $(TEST_FLAGS) $(PKGS)

.PHONY: e2e
e2e: envtest cluster-components helm redis-server ## A real single-node cluster (kubelet, containerd, runc, kube-proxy, CoreDNS) in its own network namespace; authgate by helm install; test/cluster. Needs root.
	./hack/cluster/e2e.sh

.PHONY: redis-server
redis-server: ## Make sure redis-server (Debian's package) is installed for the shared-limit tests (apt-get as root).
	./hack/redis-server.sh

.PHONY: alerts-test
alerts-test: promtool helm ## promtool check and unit-test the Prometheus alerts (config/prometheus/tests) and the chart's renderings of them.
	PROMTOOL=$(BIN)/promtool HELM=$(BIN)/helm ./hack/alerts-test.sh

.PHONY: fuzz-smoke
fuzz-smoke: ## Run each fuzz target briefly (FUZZTIME=3s).
	FUZZTIME=$(FUZZTIME) ./hack/fuzz.sh

.PHONY: fuzz
fuzz: ## Run each fuzz target longer (FUZZTIME_LONG=2m).
	FUZZTIME=$(FUZZTIME_LONG) ./hack/fuzz.sh

.PHONY: linkcheck
linkcheck: ## Prove authgate-proxy does not link client-go and no shipped binary links envtest or test code.
	@if $(GO) list -deps ./cmd/authgate-proxy | grep -q '^k8s.io/client-go'; then echo "authgate-proxy links k8s.io/client-go"; exit 1; fi
	@for b in authgate authgate-proxy authgate-controller; do \
	  if $(GO) list -deps ./cmd/$$b | grep -qE '^sigs.k8s.io/controller-runtime/pkg/envtest|^github.com/authgate/authgate/test/'; then \
	    echo "$$b links envtest or test/ code"; exit 1; fi; done
	@echo "authgate-proxy does not link k8s.io/client-go; no shipped binary links envtest or test/"

.PHONY: bench
bench: ## Load benchmark on loopback vs a bare ReverseProxy (peers found in ./bin too); writes docs/bench/. Not part of make test.
	./hack/bench.sh

.PHONY: bench-peers
bench-peers: ## make bench after installing wrk, OPA and oauth2-proxy into ./bin for the peer comparison.
	./hack/bench.sh --peers

.PHONY: bench-micro
bench-micro: ## Request-path microbenchmarks (go test -bench) with -benchmem.
	$(GO) test -run='^$$' -bench=. -benchmem ./proxy/...

.PHONY: bench-push
bench-push: envtest ## Push channel at scale: real API server, controller and 1,000 simulated sidecars on loopback (STREAMS=1000; ARGS, e.g. -json). Not part of make test.
	$(GO) run ./hack/pushbench -streams $(or $(STREAMS),1000) $(ARGS)

.PHONY: chart-test
chart-test: helm kustomize envtest ## Lint, render and dry-run the Helm chart and the kustomize tree against a real API server.
	$(GO) test -count=1 ./test/chart/

.PHONY: chart-crds
chart-crds: ## Copy the generated CRD and RBAC into charts/authgate.
	./hack/sync-chart-crds.sh

##@ Build

.PHONY: build
build: ## Build binaries into ./bin.
	$(GO) build -trimpath -o $(BIN)/ ./cmd/...

##@ Tools

.PHONY: helm
helm: ## Install helm into ./bin.
	HELM_VERSION=$(HELM_VERSION) ./hack/helm.sh >/dev/null

.PHONY: promtool
promtool: ## Install promtool (Prometheus rule checks and tests) into ./bin.
	PROMTOOL_VERSION=$(PROMTOOL_VERSION) ./hack/promtool.sh >/dev/null

.PHONY: kustomize
kustomize: ## Install kustomize into ./bin.
	KUSTOMIZE_VERSION=$(KUSTOMIZE_VERSION) ./hack/kustomize.sh >/dev/null

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd for envtest into ./bin/k8s (cached; ~5 min cold).
	./hack/envtest.sh $(ENVTEST_DIR)

.PHONY: otlpsink
otlpsink: ## Build the OpenTelemetry Collector's OTLP receiver for the tracing tests into ./bin/otlpsink (cached; ~1.5 min cold).
	./hack/otlpsink.sh $(BIN)

.PHONY: cluster-components
cluster-components: ## Build kubelet, kube-controller-manager, kube-scheduler, kube-proxy, kubectl and CoreDNS into ./bin/cluster (cached; ~6 min cold).
	./hack/cluster/build.sh $(BIN)/cluster

.PHONY: controller-gen
controller-gen: $(BIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
$(BIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION):
	@mkdir -p $(BIN)
	$(GOBIN_ENV) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	@touch $@

.PHONY: golangci-lint
golangci-lint: $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
$(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION):
	@mkdir -p $(BIN)
	$(GOBIN_ENV) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	@touch $@
