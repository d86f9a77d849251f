# jetbridge container: built with cargo in the Rust image, run on distroless as a
# non-root user. Mount your bridges.toml over /etc/jetbridge/bridges.toml and pass
# tokens as JETBRIDGE_* environment variables.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin jetbridge || true
COPY src src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin jetbridge

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/jetbridge /usr/local/bin/jetbridge
COPY bridges.toml /etc/jetbridge/bridges.toml
ENV JETBRIDGE_CONFIG=/etc/jetbridge/bridges.toml \
    JETBRIDGE_HTTP__LISTEN=0.0.0.0:8080 \
    JETBRIDGE_LOG_FORMAT=json
EXPOSE 8080
USER nonroot:nonroot
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/jetbridge", "health"]
ENTRYPOINT ["/usr/local/bin/jetbridge"]
CMD ["run"]
