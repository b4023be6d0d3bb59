#!/usr/bin/env bash
# `make run`: the runtime service (with its own PostgreSQL under .run/pg) and the collector with the local
# pipeline, started together and stopped together (Ctrl-C, or either one exiting).
#
# How the collector gets its token: the service is started with a development join key (RUNTRUST_DEV_JOIN_KEY,
# default below; it only ever listens on localhost here), and `runtime-service enrol` spends it once and writes
# the cluster token to .run/cluster-token. Later runs keep that token while the service accepts it. The
# runtime exporter in distributions/local/config.yaml sends it with every batch.
set -euo pipefail
cd "$(dirname "$0")/../.."

SERVICE=_build/runtime-service
COLLECTOR=_build/otelcol-runtrust
JOIN_KEY="${RUNTRUST_DEV_JOIN_KEY:-runtrust-local-development-join-key}"
GRPC="${RUNTRUST_SERVICE_GRPC:-localhost:4319}"
mkdir -p .run

pids=()
stop_all() {
	trap - INT TERM EXIT
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait || true
}
trap stop_all INT TERM EXIT

RUNTRUST_JOIN_KEYS="$JOIN_KEY" RUNTRUST_GRPC_LISTEN="$GRPC" RUNTRUST_LOG_FORMAT="${RUNTRUST_LOG_FORMAT:-text}" \
	"$SERVICE" -pg-data-dir .run/pg &
pids+=($!)

"$SERVICE" enrol -server "$GRPC" -join-key "$JOIN_KEY" \
	-cluster-uid "${RUNTRUST_CLUSTER_UID:-local}" -cluster-name "${RUNTRUST_CLUSTER_NAME:-local}" \
	-token-file .run/cluster-token -wait 120s

RUNTRUST_CLUSTER_TOKEN="$(cat .run/cluster-token)" RUNTRUST_SERVICE_GRPC="$GRPC" \
	"$COLLECTOR" --config distributions/local/config.yaml &
pids+=($!)

echo "make run: runtime service API on http://${RUNTRUST_HTTP_LISTEN:-localhost:8080}/api/v1/images; collector OTLP in on localhost:4317 (gRPC), localhost:4318 (HTTP). Ctrl-C stops both."
# When either one exits, stop the other.
wait -n "${pids[@]}"
