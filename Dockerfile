# syntax=docker/dockerfile:1

# Build stage: the release binary, from the locked dependency set.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the target directory between builds;
# the binary is copied out of the cached target in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/keybroker /usr/local/bin/keybroker

# Runtime stage: the binary, CA certificates, curl for health checks, and an
# unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
# /var/lib/keybroker belongs to the service user so that a volume mounted there
# (docker-compose.yml keeps the shared signing key in one) is writable by it.
RUN groupadd --system --gid 10001 keybroker \
    && useradd --system --uid 10001 --gid keybroker \
        --home-dir /var/lib/keybroker --shell /usr/sbin/nologin keybroker \
    && install -d -o keybroker -g keybroker -m 0750 /var/lib/keybroker
COPY --from=builder /usr/local/bin/keybroker /usr/local/bin/keybroker
COPY config/default.toml /etc/keybroker/default.toml
USER keybroker:keybroker
WORKDIR /var/lib/keybroker
# Inside a container the broker must listen on every interface.
ENV KEYBROKER_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["keybroker"]
CMD ["serve"]
