# syntax=docker/dockerfile:1
#
# One image for the remotefit API and its GPU workers (docker-compose.yml runs both from it).
#
#   docker build -t remotefit .
#   docker run --rm -p 8000:8000 remotefit                      # API (default CMD)
#   docker run --rm --gpus device=0 remotefit remotefit worker --gpu 0
#   docker run --rm -p 8000:8000 remotefit remotefit serve      # embedded: API + one worker
#
# Base: the official TensorFlow GPU image of the release pyproject.toml pins (tensorflow==2.21.*).
# It is Ubuntu 22.04 with CUDA/cuDNN and the system Python 3.11 (satisfies requires-python >=3.11),
# TensorFlow already installed, so `pip install .` below only adds what TF does not bring.
# Override with --build-arg TF_IMAGE=... to build on another TF 2.21 image (e.g. a CPU one).
ARG TF_IMAGE=tensorflow/tensorflow:2.21.0-gpu
FROM ${TF_IMAGE}

LABEL org.opencontainers.image.title="remotefit" \
      org.opencontainers.image.description="model.fit() as a service: Keras model JSON in, trained HDF5 weights out." \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="tensorflow/tensorflow:2.21.0-gpu"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /opt/remotefit/src

# Dependencies first, from the project metadata alone, so that editing the code does not
# reinstall them: the packages are stubbed with empty folders for this layer, and the real
# code is installed over it below (--no-deps: nothing left to fetch).
COPY pyproject.toml README.md ./
RUN mkdir -p api worker models remotefit \
    && pip install --no-cache-dir '.[server]' \
    && pip uninstall -y remotefit \
    && rm -rf build ./*.egg-info

COPY api/ api/
COPY worker/ worker/
COPY models/ models/
COPY remotefit/ remotefit/
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info \
    && remotefit --help > /dev/null

# Non-root runtime user; /srv/remotefit is its data home (REMOTEFIT_DATA_DIR). The store folder
# exists in the image so that a named volume mounted on it starts out owned by this user.
RUN groupadd --system --gid 10001 remotefit \
    && useradd --system --uid 10001 --gid 10001 --home-dir /srv/remotefit \
       --no-create-home --shell /usr/sbin/nologin remotefit \
    && mkdir -p /srv/remotefit/store \
    && chown -R 10001:10001 /srv/remotefit

ENV REMOTEFIT_HOST=0.0.0.0 \
    REMOTEFIT_PORT=8000 \
    REMOTEFIT_DATA_DIR=/srv/remotefit

WORKDIR /srv/remotefit
USER 10001:10001

EXPOSE 8000

# Liveness of the API (the default command). curl is not in the base image, so Python asks;
# urlopen raises on a refused connection or a non-2xx answer, which fails the check.
# A worker container has no HTTP server: docker-compose.yml gives the worker its own check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('REMOTEFIT_PORT', '8000') + '/healthz', timeout=4)"]

CMD ["remotefit", "api"]
