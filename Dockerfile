# jetbridge container. Build: docker build -t jetbridge .
# Dependencies are cooked by cargo-chef from a recipe of the manifests, so a
# source change rebuilds only jetbridge itself, and the recipe cannot go stale
# (it is computed from the context each build). Runs on distroless as a
# non-root user; mount your bridges.toml over /etc/jetbridge/bridges.toml and
# pass tokens as JETBRIDGE_* environment variables.

FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin jetbridge
COPY . .
RUN cargo build --release --locked --bin jetbridge

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/jetbridge /usr/local/bin/jetbridge
COPY bridges.toml /etc/jetbridge/bridges.toml
ENV JETBRIDGE_CONFIG=/etc/jetbridge/bridges.toml \
    JETBRIDGE_HTTP__LISTEN=0.0.0.0:8080 \
    JETBRIDGE_LOG_FORMAT=json
EXPOSE 8080
# distroless nonroot, by number so that runtimes can verify it is not root.
USER 65532:65532
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/jetbridge", "health"]
ENTRYPOINT ["/usr/local/bin/jetbridge"]
CMD ["run"]
