# The production image: gunicorn serving config.wsgi, static files collected at build time and
# served by WhiteNoise. The same image runs the Celery worker and beat (see docker-compose.yml).
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DEBUG=false \
    WEB_CONCURRENCY=3

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. pyproject.toml declares no
# packages ([tool.setuptools] packages = []): `pip install .` installs only the dependencies,
# and the code runs from the source tree copied into /app below.
COPY pyproject.toml ./
RUN pip install .

COPY . .

# Collect static files into /app/var/static (STATIC_ROOT). Production settings need a
# SECRET_KEY to load; this one exists only for the build and is never used at run time.
RUN DEBUG=false SECRET_KEY=build-only python manage.py collectstatic --noinput

# Run as an unprivileged user that cannot write to the code or the static files.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
USER app

EXPOSE 8000
# gunicorn takes its worker count from WEB_CONCURRENCY. Access log to stdout; gunicorn's and the
# app's logs (settings.LOGGING) to stderr. docker-compose.yml checks health with
# config/healthcheck.py (GET /healthz); the same image runs the worker, so no HEALTHCHECK here.
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "--error-logfile", "-", "--log-level", "info"]
