# syntax=docker/dockerfile:1
# sc2deploy device runtime for Jetson Orin on JetPack 6.1 (L4T r36.4.0: Ubuntu 22.04,
# Python 3.10, CUDA 12.6, TensorRT 10.3). The image must match the device's L4T major release
# (r36.x); engines are built inside it on the device with `sc2deploy build-engine`.
# Build from the repository root (see docker/README.md):
#   docker buildx build --platform linux/arm64 -f docker/jetson.Dockerfile -t sc2deploy:jetson .
FROM nvcr.io/nvidia/l4t-jetpack:r36.4.0

# TensorRT and its Python bindings (`import tensorrt`, apt package python3-libnvinfer) come with
# the base image; they exist only for the system Python 3.10, so sc2deploy is installed there
# (no venv). build-essential compiles the C range coder; python3-pip installs the rest.
# The non-root user is in the video group, which owns the Jetson GPU device nodes
# (/dev/nvhost-*, /dev/nvmap).
# DL3008 (pin apt versions): the L4T base tag fixes the release; NVIDIA and Ubuntu replace
# pinned revisions in their repositories, which would break the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential python3-pip \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --groups video sc2deploy

WORKDIR /opt/sc2deploy/src
COPY . .

# constraints.txt pins cp311+ releases (numpy 2.4, onnxruntime 1.31), which have no cp310
# wheels: docker/jetson-constraints.txt pins the same packages for Python 3.10 on aarch64.
# cuda-python provides `cuda.bindings.runtime` (device buffers of the TensorRT runner), from
# 12.6.1 on; 12.6.x matches JetPack 6.1's CUDA 12.6.
RUN python3 -m pip install --no-cache-dir -c docker/jetson-constraints.txt ".[device]" cuda-python

# Numeric uid (without a group, so the supplementary video group still applies): user sc2deploy.
USER 1000
WORKDIR /home/sc2deploy

ENTRYPOINT ["sc2deploy"]
CMD ["--help"]
