# The service alone: a release build, then the binary on a distroless base (glibc and CA
# files, no shell, no package manager), running as an unprivileged user. Everything it serves
# (stylesheet, favicon, migrations, time zones, the OpenAPI document) is inside the binary.
#
#   docker build -t limitry .
#   docker run -d --name limitry -p 3000:3000 -v limitry-data:/data limitry
#   docker exec limitry limitry keys create --name app

# The two base images, replaceable where their registries cannot be reached (see the README).
ARG BUILD_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin limitry \
    && cp target/release/limitry /limitry \
    && mkdir /data

FROM ${RUNTIME_IMAGE}
COPY --from=build /limitry /usr/local/bin/limitry
# The SQLite file and its lock live here; a named volume takes this directory's owner.
COPY --from=build --chown=nonroot:nonroot /data /data
WORKDIR /data
ENV LIMITRY_BIND=0.0.0.0:3000 \
    DATABASE_URL=sqlite:///data/limitry.db \
    LIMITRY_LOG_FORMAT=json
EXPOSE 3000
VOLUME ["/data"]
USER nonroot
# SIGTERM (docker stop) drains requests in flight; give it more than the request timeout:
# docker stop -t 45.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/limitry"]
CMD ["serve"]
