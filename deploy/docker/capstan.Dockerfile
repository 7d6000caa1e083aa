# syntax=docker/dockerfile:1
# The capstan CLI image: the API server (capstan server), the operator (capstan operator), and the default image of
# a TrainJob without spec.image, so the examples run unchanged (./capstan and examples/ are in its working folder).
#   docker build -f deploy/docker/capstan.Dockerfile -t ghcr.io/capstan-dev/capstan:0.1.0 .
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props Capstan.slnx ./
COPY src/ src/
RUN --mount=type=cache,target=/root/.nuget/packages \
    dotnet publish src/Capstan.Cli -c Release -o /app --no-self-contained -p:UseAppHost=true -p:DebugType=none -nologo

# aspnet (not chiseled): training jobs run /bin/sh scripts, and LightGBM needs the OpenMP runtime.
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/capstan \
    && chown "$APP_UID" /var/lib/capstan
WORKDIR /app
COPY --from=build /app ./
COPY examples/ ./examples/
# A training job may write its outputs to its working folder.
RUN chown "$APP_UID" /app
ENV CAPSTAN_HOME=/var/lib/capstan \
    DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    DOTNET_gcServer=0
# The image's non-root user (uid 1654).
USER $APP_UID
ENTRYPOINT ["/app/capstan"]
CMD ["--help"]
