# Runs the server from source with Deno from npm (the only registry some deployments reach).
FROM node:20-bookworm-slim
WORKDIR /app
COPY . .
RUN DENO_VERSION="$(cat .deno-version)" && npm install -g "deno@${DENO_VERSION}" \
  && deno install --frozen \
  && useradd --system --create-home fluxbase && chown -R fluxbase /app
USER fluxbase
ENV FLUXBASE_HOST=0.0.0.0 FLUXBASE_PORT=8080 FLUXBASE_DATA_DIR=/app/.fluxbase
EXPOSE 8080
CMD ["deno", "task", "start"]
