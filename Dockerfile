# CPU image of the search service:
#   docker build -t image-search-backend .
#   cp .env.template .env
#   docker run -p 8000:8000 --env-file .env -v image-search-images:/srv/images \
#       -v image-search-data:/srv/data -v image-search-models:/home/app/.cache/huggingface \
#       image-search-backend
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/home/app/.cache/huggingface \
    IMAGES_DIR=/srv/images \
    SEED_IMAGES_DIR=/srv/example_images

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 app

WORKDIR /srv
COPY requirements.txt .
# The CPU wheel of torch first, so requirements.txt finds it installed and pulls no CUDA.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -r requirements.txt

COPY --chown=app:app app/ app/
COPY --chown=app:app example_images/ example_images/
# The collection's images (a volume: uploads outlive the container; the samples are copied
# in at its first start), the stored index with the model's ONNX export, the images folder
# replicas share (docker-compose.yml) and the Hugging Face cache: created here and owned
# by the service's user, so that volumes mounted on them are writable by it. A volume
# keeps what it holds when the container is replaced.
RUN mkdir -p /srv/images /srv/data /srv/shared/images "$HF_HOME" \
    && chown -R app:app /srv/images /srv/data /srv/shared /home/app/.cache
VOLUME ["/srv/images", "/srv/data"]

USER app
EXPOSE 8000
# Start-up downloads the model and exports it to ONNX on first run (indexing then runs in
# the background, with /health answering): give it time.
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
# Idle keep-alive connections close after 5 s; beyond 64 connections uvicorn answers 503.
# Put a reverse proxy in front for public exposure (docs/operations.md: Docker).
# python -m app: uvicorn app.main:served_app --factory, after checking the port is free.
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000", \
     "--timeout-keep-alive", "5", "--limit-concurrency", "64"]
