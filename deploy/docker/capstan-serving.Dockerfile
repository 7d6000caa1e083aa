# syntax=docker/dockerfile:1
# The inference server image: `capstan serve` (Open Inference Protocol v2 over REST and gRPC, ONNX Runtime) on a
# chiseled runtime: no shell, no package manager, non-root by default. An InferenceService's Deployment runs it with
# `serve MODEL --host 0.0.0.0 --port 8080 --grpc-port 8081 ...`.
#   docker build -f deploy/docker/capstan-serving.Dockerfile -t ghcr.io/capstan-dev/capstan-serving:0.1.0 .
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props Capstan.slnx ./
COPY src/ src/
RUN --mount=type=cache,target=/root/.nuget/packages \
    dotnet publish src/Capstan.Cli -c Release -o /app --no-self-contained -p:UseAppHost=true -p:DebugType=none -nologo

FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled AS runtime
WORKDIR /app
COPY --from=build /app ./
# Registry models are downloaded here; the Deployment mounts an emptyDir over it (read-only root filesystem).
ENV CAPSTAN_HOME=/var/cache/capstan \
    DOTNET_CLI_TELEMETRY_OPTOUT=1
USER $APP_UID
EXPOSE 8080 8081
ENTRYPOINT ["/app/capstan"]
CMD ["serve", "--help"]
