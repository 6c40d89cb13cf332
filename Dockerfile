# syntax=docker/dockerfile:1
# One Rust build, two runtime targets, and the frontends:
#   docker build --target command-service -t orders/command-service .
#   docker build --target query-service   -t orders/query-service .
#   docker build --target web             -t orders/web .
# The migrations are embedded in the binaries (`<service> migrate` runs them as a job).

FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Dependencies first, against empty crates: this layer is rebuilt only when a manifest or the
# lock file changes, not on every source edit.
COPY Cargo.toml Cargo.lock ./
COPY shared-events/Cargo.toml shared-events/
COPY platform/Cargo.toml platform/
COPY command-service/Cargo.toml command-service/
COPY query-service/Cargo.toml query-service/
COPY tests/Cargo.toml tests/
COPY bench/Cargo.toml bench/
RUN for crate in shared-events platform command-service query-service tests bench; do \
      mkdir -p $crate/src && : > $crate/src/lib.rs; \
    done \
 && mkdir -p tests/e2e \
 && for main in command-service/src/main.rs query-service/src/main.rs bench/src/main.rs tests/e2e/main.rs; do \
      echo 'fn main() {}' > $main; \
    done \
 && cargo build --release --locked -p command-service -p query-service

# Then the sources.
COPY . .
RUN find shared-events platform command-service query-service -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p command-service -p query-service \
 && cp target/release/command-service target/release/query-service /usr/local/bin/ \
 && strip --strip-debug /usr/local/bin/command-service /usr/local/bin/query-service

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
USER 10001:10001
ENV LOG_FORMAT=json
STOPSIGNAL SIGTERM

FROM runtime AS command-service
COPY --from=build /usr/local/bin/command-service /usr/local/bin/command-service
COPY migrations/command /usr/share/orders/migrations/command
ENV HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=12 CMD ["/usr/local/bin/command-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/command-service"]
CMD ["serve"]

FROM runtime AS query-service
COPY --from=build /usr/local/bin/query-service /usr/local/bin/query-service
COPY migrations/query /usr/share/orders/migrations/query
ENV HTTP_ADDR=0.0.0.0:8081
EXPOSE 8081
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=12 CMD ["/usr/local/bin/query-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/query-service"]
CMD ["serve"]

# The frontends (web/): built with esbuild here, served as plain files by web/serve.mjs, which
# writes /config.js from COMMAND_URL and QUERY_URL. Nothing is fetched at run time.
FROM node:22-bookworm-slim AS web-build
WORKDIR /web
# Dependencies first (pinned by the lock file): rebuilt only when it changes.
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/tsconfig.json web/build.mjs ./
COPY web/src src
COPY web/public public
COPY web/pages pages
RUN npm run build

FROM node:22-bookworm-slim AS web
WORKDIR /app
COPY --from=web-build /web/dist /app/dist
COPY web/serve.mjs /app/serve.mjs
USER node
ENV NODE_ENV=production WEB_PORT=8082
EXPOSE 8082
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=12 CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.WEB_PORT || 8082) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# serve.mjs handles SIGTERM itself (as PID 1, node has no default handler for it).
CMD ["node", "serve.mjs"]
