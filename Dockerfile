# Multi-stage build: a static binary on a distroless base that has CA
# certificates and a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Keep this identical to the build command in README.md (a test checks it).
RUN CGO_ENABLED=0 go build -trimpath -o mcp_cert_exporter .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/mcp_cert_exporter /bin/mcp_cert_exporter
# A quiet configuration: the image's trust store only (examples/image-config.yml).
COPY examples/image-config.yml /etc/mcp_cert_exporter/config.yml
WORKDIR /etc/mcp_cert_exporter
USER 65532:65532
EXPOSE 9879
ENTRYPOINT ["/bin/mcp_cert_exporter"]
CMD ["--config.file=/etc/mcp_cert_exporter/config.yml"]
