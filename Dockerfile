# One image for every DiffuSeC Link service. CPU-only torch: the pinned 2.13.0 CPU wheel.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY sender ./sender
COPY receiver ./receiver
COPY channel_proxy ./channel_proxy
COPY protos ./protos
COPY link ./link
COPY checkpoints ./checkpoints
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -e .
ENV DIFFUSEC_CHECKPOINTS=/app/checkpoints
ENTRYPOINT ["diffusec"]
CMD ["--help"]
