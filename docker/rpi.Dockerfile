# syntax=docker/dockerfile:1
# sc2deploy device runtime for the Raspberry Pi (Pi 4 / Pi 5, 64-bit OS): Debian bookworm,
# Python 3.11, onnxruntime + LiteRT, the portable C range coder compiled from source.
# Build from the repository root (see docker/README.md):
#   docker buildx build --platform linux/arm64 -f docker/rpi.Dockerfile -t sc2deploy:rpi .
FROM python:3.11-slim-bookworm

# The C coder (sc2deploy/codec/rangecoder.c) is compiled by `pip install` with the platform's
# compiler: constriction has no Linux aarch64 wheel, so the C coder is the one used on the Pi.
# The non-root user is in the video group (gid 44 on Debian and Raspberry Pi OS): it may open
# /dev/vcio for the Pi 5 PMIC readings.
# DL3008 (pin apt versions): bookworm's point releases replace the pinned revisions, so a pin
# would break the build at the next security update; the base image tag fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --groups video sc2deploy

WORKDIR /opt/sc2deploy/src
COPY . .

# Versions pinned by the project's constraints.txt (each pin used here has a cp311 aarch64 wheel).
# ai-edge-litert runs the tflite* artifacts (the tflite extra would add litert-torch, which is
# host-only and excluded on aarch64 anyway).
RUN pip install --no-cache-dir -c constraints.txt ".[device]" ai-edge-litert

# Numeric uid (without a group, so the supplementary video group still applies): user sc2deploy.
USER 1000
WORKDIR /home/sc2deploy

ENTRYPOINT ["sc2deploy"]
CMD ["--help"]
