# syntax=docker/dockerfile:1
# The one image every Clasper component runs (charts/clasper): its entrypoint is the `clasper`
# CLI, so a container's arguments are the command, e.g. `serve --service trace` or `migrate`.
#
#   docker build -t ghcr.io/clasper/clasper:0.1.0 .
#
# docs/DEPLOYMENT.md ("The image") has the build and push steps.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# corepack reads pnpm's version from package.json's packageManager; CI=true keeps pnpm from
# prompting when the production install below replaces node_modules.
ENV COREPACK_ENABLE_DOWNLOAD_PROMPT=0 CI=true
RUN corepack enable
WORKDIR /src
# The store is filled from the lockfile alone, so this layer is reused until dependencies change.
# The installs still prefer-offline rather than offline: a cached layer does not bring back a
# cache mount that was pruned since.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
RUN --mount=type=cache,id=pnpm-store,target=/root/.local/share/pnpm/store pnpm fetch
COPY . .
RUN --mount=type=cache,id=pnpm-store,target=/root/.local/share/pnpm/store \
    pnpm install --frozen-lockfile --prefer-offline
RUN pnpm build
# A fresh production install: the runtime stage copies this tree as it is, the workspace
# packages resolving each other through pnpm's relative links. `install --prod` over the full
# install would only unlink the dev tools and leave them in node_modules/.pnpm (423 MB, not 240).
RUN --mount=type=cache,id=pnpm-store,target=/root/.local/share/pnpm/store \
    rm -rf node_modules packages/*/node_modules services/*/node_modules \
    && pnpm install --frozen-lockfile --prefer-offline --prod

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only for the process (the chart also mounts the root filesystem
# read-only). workspace/ is the template `clasper init` copies and, without a mounted
# workspace, what the workspace service serves (CLASPER_WORKSPACE defaults to ./workspace).
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages ./packages
COPY --from=build /src/services ./services
COPY --from=build /src/workspace ./workspace
# The UID and GID the chart's securityContext runs as.
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["node", "/app/packages/cli/dist/bin.js"]
CMD ["--help"]
