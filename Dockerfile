# syntax=docker/dockerfile:1
# mde-app-restriction-mcp in remote mode (MCP Streamable HTTP), see docs/remote-deployment.md.
# Build: docker build -t mde-app-restriction-mcp .   Run: docker run IMAGE --simulator (arguments are flags)

# --- build: npm ci, npm run build (dist/, the notices and the SBOM) ---------------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json LICENSE ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && test -f dist/cli.js && test -f dist/THIRD-PARTY-NOTICES.txt && test -f dist/sbom.cdx.json
# The node binary, every shared library it loads (ldd) and the CA bundle, gathered under /rootfs.
RUN set -eu; mkdir -p /rootfs/usr/local/bin /rootfs/etc/ssl/certs /rootfs/tmp; \
    cp /usr/local/bin/node /rootfs/usr/local/bin/node; \
    for lib in $(ldd /usr/local/bin/node | grep -o '/[^ ]*'); do cp --parents -L "$lib" /rootfs/; done; \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/; \
    chmod 1777 /rootfs/tmp

# --- runtime: scratch + node + dist/ ---------------------------------------------------------------------
FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="mde-app-restriction-mcp" \
      org.opencontainers.image.description="MCP server that lifts the app-execution restriction on a device through Microsoft Defender for Endpoint, behind a human confirmation gate." \
      org.opencontainers.image.source="https://github.com/contoso-secops/mde-app-restriction-mcp" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      io.modelcontextprotocol.server.name="io.github.contoso-secops/mde-app-restriction-mcp"
COPY --from=build /rootfs/ /
COPY --from=build /src/dist/ /app/dist/
COPY --from=build /src/LICENSE /app/LICENSE
COPY healthcheck.mjs /app/healthcheck.mjs
# Remote mode on every interface. With no sign-in configured the server refuses to start and names the
# settings to set (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET); --simulator needs a loopback bind.
ENV MDE_TRANSPORT=http \
    MDE_HTTP_HOST=0.0.0.0 \
    MDE_HTTP_PORT=8080 \
    NODE_ENV=production \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /app
USER 1000
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/local/bin/node", "/app/healthcheck.mjs"]
ENTRYPOINT ["/usr/local/bin/node", "/app/dist/cli.js"]
