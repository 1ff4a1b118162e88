# dronepipe container image: every binary (six services and the ops CLI) in one image; the
# Deployment or compose service picks the binary with its command.
#   docker build -t dronepipe:dev .
# At the repository root, not in compose/, because the build context must contain pipeline/,
# producers/, consumers/, schemas/, the Makefile and scripts/embed-schemas.sh; .dockerignore
# keeps the context down to exactly those.

# ---- build: the same Debian 12 toolchain and -dev packages as scripts/install-deps.sh ----------
FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential pkg-config librdkafka-dev libhiredis-dev libmongoc-dev \
      libbson-dev libmicrohttpd-dev libjansson-dev uuid-dev libgnutls28-dev libjwt-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY scripts/embed-schemas.sh scripts/embed-topics.sh scripts/topics.txt scripts/
COPY schemas/ schemas/
COPY pipeline/ pipeline/
COPY producers/ producers/
COPY consumers/ consumers/
RUN make -j"$(nproc)" bins \
 && install -d /out \
 && install -m 0555 build/bin/* /out/ \
 && for b in dronepipe dronepipe-ingress dronepipe-workflow dronepipe-package \
             dronepipe-scheduler dronepipe-delivery dronepipe-dronesim; do \
      test -x "/out/$b" || { echo "missing binary $b" >&2; exit 1; }; \
    done

# ---- runtime: Debian 12 slim with only the shared libraries the binaries link -----------------
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      librdkafka1 libhiredis0.14 libmongoc-1.0-0 libbson-1.0-0 libmicrohttpd12 \
      libjansson4 libuuid1 libgnutls30 libjwt0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin dronepipe
COPY --from=build /out/ /usr/local/bin/
# dp-probe PORT PATH: exit 0 when GET http://127.0.0.1:PORT/PATH answers 200. Only compose
# healthchecks use it (Kubernetes probes are httpGet); it needs bash and nothing else, so the
# image carries no curl or wget.
RUN printf '%s\n' \
      '#!/bin/bash' \
      'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1' \
      'printf "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" "$2" >&3' \
      'IFS= read -r -t 2 status <&3 || exit 1' \
      '[[ $status == HTTP/1.?" 200"* ]]' \
      >/usr/local/bin/dp-probe \
 && chmod 0555 /usr/local/bin/dp-probe \
 && if ldd /usr/local/bin/dronepipe* | grep 'not found'; then exit 1; fi
# Containers listen on every interface; the manifests set it too.
ENV DP_HTTP_ADDR=0.0.0.0
USER 10001:10001
LABEL org.opencontainers.image.title="dronepipe" \
      org.opencontainers.image.description="Kafka-centric drone-delivery pipeline (C11)" \
      org.opencontainers.image.base.name="debian:12-slim"
CMD ["/usr/local/bin/dronepipe", "--help"]
