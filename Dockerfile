# Multi-stage build: a static binary on a distroless base that has CA
# certificates and a non-root user (65532).
#
# The base images are build arguments pinned by digest, so a build is
# repeatable; override them to use a mirror or local stand-ins (the
# deployment test does: deploy/docker_test.go). To move to a newer base:
#   crane digest golang:1.26.8-bookworm
#   crane digest gcr.io/distroless/static-debian12:nonroot
ARG BUILDER_IMAGE=golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab

FROM ${BUILDER_IMAGE} AS build
# Where modules come from: --build-arg GOPROXY=<your proxy> for a mirror.
ARG GOPROXY=https://proxy.golang.org,direct
# The release; a test keeps this default equal to the VERSION file.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG BRANCH=HEAD
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# What `mcp_cert_exporter --version` and mcp_cert_exporter_build_info show.
ENV LDFLAGS="-X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${REVISION} -X github.com/prometheus/common/version.Branch=${BRANCH} -X github.com/prometheus/common/version.BuildUser=docker"
# Keep this identical to the build command in docs/deployment.md (a test checks it).
RUN CGO_ENABLED=0 go build -trimpath -ldflags="$LDFLAGS" -o mcp_cert_exporter .

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/mcpcert/mcp_cert_exporter
LABEL org.opencontainers.image.title="mcp_cert_exporter" \
      org.opencontainers.image.description="Prometheus exporter for the certificates and TLS health of MCP servers" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /src/mcp_cert_exporter /bin/mcp_cert_exporter
# Watches nothing and says so at start: mount your configuration over it.
COPY deploy/config.yml /etc/mcp_cert_exporter/config.yml
USER 65532:65532
EXPOSE 9879
# Exec form: distroless has no shell. It asks :9879; if you change
# --web.listen-address or use --web.config.file, override the health check
# with the same flags (see docs/deployment.md).
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
    CMD ["/bin/mcp_cert_exporter", "healthcheck"]
ENTRYPOINT ["/bin/mcp_cert_exporter"]
CMD ["--config.file=/etc/mcp_cert_exporter/config.yml"]
