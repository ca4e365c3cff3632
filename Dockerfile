# syntax=docker/dockerfile:1
# Builds one authgate binary into a distroless image (no shell, non-root):
#   docker build --build-arg BINARY=authgate-controller -t ghcr.io/authgate/authgate-controller:0.1.0 .
#   docker build --build-arg BINARY=authgate-proxy      -t ghcr.io/authgate/authgate-proxy:0.1.0 .
# BINARY is one of the shipped binaries: authgate-proxy, authgate-controller, authgate. Multi-arch: docker buildx build --platform linux/amd64,linux/arm64 ...

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS builder
ARG BINARY=authgate-controller
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
# Dependencies first, so source changes reuse the module cache layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY proxy/ proxy/
COPY policies/ policies/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    case "${BINARY}" in authgate-proxy|authgate-controller|authgate) ;; \
      *) echo "BINARY ${BINARY} is not shipped: one of authgate-proxy, authgate-controller, authgate"; exit 1 ;; esac; \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w" -o /out/app "./cmd/${BINARY}"

FROM gcr.io/distroless/static-debian12:nonroot
ARG BINARY=authgate-controller
LABEL org.opencontainers.image.source="https://github.com/authgate/authgate" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.title="${BINARY}"
COPY --from=builder /out/app /usr/local/bin/app
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/app"]
