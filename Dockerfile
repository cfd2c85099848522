# The image cron/k8s-cronjob.yaml runs (registry.example.com/magsit:<version>): magsit installed as
# the README installs it (a venv + pip), running as the unprivileged user 10001 the manifest expects.
#
#   docker build -t registry.example.com/magsit:0.1.0 .
#   docker run --rm registry.example.com/magsit:0.1.0 --version
#
# The config is mounted at /etc/magsit/magsit.toml (MAGSIT_CONFIG), secrets come as MAGSIT_* variables,
# and the state file lives on a volume at /var/lib/magsit: the image itself can be read-only.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 magsit \
    && useradd --system --uid 10001 --gid magsit --home-dir /var/lib/magsit --shell /usr/sbin/nologin magsit

WORKDIR /opt/magsit
COPY pyproject.toml README.md ./
COPY magsit ./magsit
COPY docs ./docs
RUN python3 -m venv /opt/magsit/.venv && /opt/magsit/.venv/bin/pip install -q .

RUN install -d -o magsit -g magsit -m 700 /var/lib/magsit
ENV PATH=/opt/magsit/.venv/bin:$PATH \
    MAGSIT_CONFIG=/etc/magsit/magsit.toml \
    MAGSIT_STATE_PATH=/var/lib/magsit/magsit.db

USER 10001:10001
WORKDIR /var/lib/magsit
ENTRYPOINT ["magsit"]
CMD ["--help"]
