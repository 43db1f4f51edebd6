# The Sluice image: the `sluice` command (JobManager, TaskManager, client) on Node 20. No nats-server inside:
# NATS runs on its own (deploy/k8s/nats, deploy/nats), and every Sluice process reaches it over the network.
#
#   docker build -t sluice:0.1.0 .
#   docker run --rm sluice:0.1.0                                   # --help
#   docker run --rm sluice:0.1.0 jobmanager --nats nats://my-nats:4222
#
# The tag is the version in package.json; deploy/k8s uses the same name, and test/deploy checks that they agree.
# Not built in this repository's CI (it has no container engine): see docs/deployment.md.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: compile TypeScript, then keep only the production dependencies ---------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# `npm ci` with npm 11 can reject this lock file because it lacks other platforms' optional packages
# (@biomejs/cli-darwin-arm64, ...: an npm bug, see README "Development"); `npm install` then installs the
# same locked versions. node:20 ships npm 10, where `npm ci` normally succeeds.
RUN npm ci --no-audit --no-fund || npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# --- runtime ------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
ARG SLUICE_VERSION=0.1.0
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.description="Sluice: stream processing on Node.js and NATS (JobManager, TaskManager, CLI)" \
      org.opencontainers.image.version="${SLUICE_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# pino-pretty (pretty logs on a terminal) is a dev dependency and not in this image: log JSON lines even
# under `docker run -t` / `kubectl run -t`, where the default log.format `auto` would ask for it.
ENV NODE_ENV=production \
    SLUICE_LOG_FORMAT=json
WORKDIR /opt/sluice
# Owned by root and not writable by the user the processes run as. bin/sluice.js imports ../dist, and
# dist/version.js reads ../package.json.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
# 1000 is the `node` user of the Node images (home /home/node). Numeric, so that Kubernetes' runAsNonRoot
# can verify it. Sluice writes only to the temp dir (job bundles, artifact cache) and, for `cluster start` and
# application mode, to cluster.run-dir (default ~/.sluice/clusters).
USER 1000:1000
ENTRYPOINT ["node", "/opt/sluice/bin/sluice.js"]
CMD ["--help"]
