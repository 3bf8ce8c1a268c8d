# The Switchyard application image: one image, every process (`switchyard api|worker|relay|beat|flower`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SWITCHYARD_ENV=prod \
    SWITCHYARD_LOG_FORMAT=json \
    SWITCHYARD_DATA_DIR=/var/lib/switchyard

RUN groupadd --system --gid 10001 switchyard \
    && useradd --system --uid 10001 --gid switchyard --home-dir /app --shell /usr/sbin/nologin switchyard \
    && install -d -o switchyard -g switchyard /var/lib/switchyard

WORKDIR /app

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when they change.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the code (changes often; cheap to rebuild).
COPY cli.py config.py errors.py logs.py ./
COPY store ./store
COPY producers ./producers
COPY tasks ./tasks
COPY workers ./workers
COPY ops ./ops
COPY devstack ./devstack
COPY migrations ./migrations
RUN pip install --no-deps -e . && python -c "import cli"

USER switchyard
EXPOSE 8000 5555 9100
ENTRYPOINT ["switchyard"]
CMD ["api", "--host", "0.0.0.0"]
