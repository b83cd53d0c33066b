# One image for every DiffuSeC Link service, CPU-only torch (the pinned 2.13.0 CPU wheel).
#
# Build arguments (the defaults need Docker Hub and PyTorch's CPU index; docs/link.md, "Docker Compose"):
#   BASE_IMAGE       a Python 3.11 image: python:3.11-slim, or the Debian image that
#                    scripts/make-base-image.sh makes with debootstrap where Docker Hub is out of reach
#   TORCH_INDEX_URL  where pip finds the CPU torch wheel; empty: PyPI and ./wheels only (set it empty
#                    where that host is unreachable, or pip retries it for minutes for every package)
# ./wheels: any wheels there (e.g. torch-2.13.0+cpu-*.whl) are installed first, without a network.
#
# Two stages, so that the wheels and pip's work stay in the first and the image holds only the
# installed environment, the code and the checkpoints.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN python3 -m venv /opt/diffusec
COPY wheels/ /wheels/
RUN set -e; \
    if ls /wheels/*.whl >/dev/null 2>&1; then \
      /opt/diffusec/bin/pip install --no-cache-dir --no-index --no-deps /wheels/*.whl; \
    fi
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY sender ./sender
COPY receiver ./receiver
COPY channel_proxy ./channel_proxy
COPY protos ./protos
COPY link ./link
COPY diffusec ./diffusec
# Wheels installed above already satisfy their requirements, so pip does not look for them again.
# pip trusts the system's CA store where there is one (scripts/make-base-image.sh --ca adds a
# TLS-intercepting proxy's CA there); a venv's pip would otherwise use only its own bundle.
RUN set -e; \
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; fi; \
    extra=""; if [ -n "$TORCH_INDEX_URL" ]; then extra="--extra-index-url $TORCH_INDEX_URL"; fi; \
    /opt/diffusec/bin/pip install --no-cache-dir --find-links /wheels $extra /src

FROM ${BASE_IMAGE}
COPY --from=build /opt/diffusec /opt/diffusec
COPY checkpoints /app/checkpoints
WORKDIR /app
# The venv first on PATH: `python` (the health checks) and the diffusec* scripts are its own.
ENV PATH=/opt/diffusec/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DIFFUSEC_NO_PROGRESS=1 \
    DIFFUSEC_CHECKPOINTS=/app/checkpoints
ENTRYPOINT ["diffusec"]
CMD ["--help"]
