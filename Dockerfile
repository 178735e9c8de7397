# QCAT server image: `docker build -t qcat .` (docker-compose.yml builds it as service `qcat`).
# Three stages: build compiles TypeScript with every dependency; deps installs the production
# dependencies only; the runtime stage gets those two results and nothing else, and runs as the
# unprivileged user `node`.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# The sources (.dockerignore leaves out tests, docs, secrets and local state); tsconfig.build.json
# says which folders are compiled.
COPY . .
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8082 \
    QCAT_DATA_DIR=/var/lib/qcat
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The folders QCAT writes to: QCAT_DATA_DIR (the embedded PostgreSQL, when DATABASE_URL is not
# set) and the backups (docker-compose.yml mounts a volume there). Owned by `node`, so a new
# volume mounted on them is too.
# /var/lib/qcat-secrets (mode 0700): the first admin token (QCAT_BOOTSTRAP_TOKEN_FILE under compose).
RUN mkdir -p /var/lib/qcat /var/lib/qcat-backups /var/lib/qcat-secrets \
  && chown node:node /var/lib/qcat /var/lib/qcat-backups /var/lib/qcat-secrets \
  && chmod 0700 /var/lib/qcat-secrets
USER node
EXPOSE 8082
# Liveness: the process answers HTTP. Readiness (dependencies, projection lag) is /health/ready.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8082) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# QCAT handles SIGTERM itself (drains HTTP and WebSockets, stops projections, exit 0).
ENTRYPOINT ["node", "dist/ops/cli.js"]
CMD ["serve"]
