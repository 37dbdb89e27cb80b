# syntax=docker/dockerfile:1
# One image per service, built from the repository's single Go module:
#   docker build --build-arg SERVICE=ingest    -t leadpipe-ingest .
#   docker build --build-arg SERVICE=processor -t leadpipe-processor .
#   docker build --build-arg SERVICE=replayer  -t leadpipe-replayer .
# Static binary (CGO off) on distroless/static, running as the nonroot user.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
ARG SERVICE
RUN case "${SERVICE}" in \
      ingest|processor|replayer) ;; \
      *) echo "build arg SERVICE must be ingest, processor or replayer (got '${SERVICE}')" >&2; exit 1 ;; \
    esac
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false

# The whole module. `go build` downloads only the modules the service's packages import (a
# `go mod download` would also fetch the test-only dependencies: chromedp, fake-gcs-server...).
# The cache mounts keep downloads and compiled packages between local builds.
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/app "./${SERVICE}/cmd/${SERVICE}"

FROM gcr.io/distroless/static-debian12:nonroot
ARG SERVICE
LABEL org.opencontainers.image.title="leadpipe-${SERVICE}" \
      org.opencontainers.image.source="https://github.com/leadpipe/leadpipe"
COPY --from=build /out/app /app
USER nonroot:nonroot
# Cloud Run sets PORT; 8080 is the services' default.
EXPOSE 8080
ENTRYPOINT ["/app"]
