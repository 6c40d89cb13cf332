# syntax=docker/dockerfile:1
# One build, two runtime targets: `docker build --target command-service .` and
# `--target query-service`. Migrations are embedded in the binaries.

FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p command-service -p query-service \
 && cp target/release/command-service target/release/query-service /usr/local/bin/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home app
USER 10001
ENV LOG_FORMAT=json

FROM runtime AS command-service
COPY --from=build /usr/local/bin/command-service /usr/local/bin/command-service
ENV HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=2s --retries=12 CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/command-service"]

FROM runtime AS query-service
COPY --from=build /usr/local/bin/query-service /usr/local/bin/query-service
ENV HTTP_ADDR=0.0.0.0:8081
EXPOSE 8081
HEALTHCHECK --interval=5s --timeout=2s --retries=12 CMD curl -fsS http://127.0.0.1:8081/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/query-service"]
