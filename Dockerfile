# syntax=docker/dockerfile:1
# Build stage: TypeScript compiles here, and argon2 too where it has no prebuilt binary.
FROM node:24-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# SQLite is Node 24's built-in node:sqlite; better-sqlite3, optional and only for Node 20, is left out.
RUN npm ci --omit=optional
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY plugins ./plugins
COPY routes ./routes
COPY migrations ./migrations
RUN npm run build && npm prune --omit=dev --omit=optional

# Runtime stage: only the compiled service and its production dependencies, as a non-root user.
FROM node:24-bookworm-slim
# One glibc arena: argon2's 19 MiB buffer is then kept once, not once in each arena a hashing
# thread has used, and a smaller young generation caps the heap's growth under load (see
# README, Performance). Same as `npm run serve`.
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 MALLOC_ARENA_MAX=1
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/package.json ./
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD ["node", "-e", "fetch('http://127.0.0.1:3000/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--max-semi-space-size=8", "dist/src/server.js"]
