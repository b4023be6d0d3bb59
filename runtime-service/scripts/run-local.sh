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
# RUNTRUST_RUN_DIR holds the PostgreSQL data, the token, the queue and the findings file (.run by default).
RUN_DIR="${RUNTRUST_RUN_DIR:-.run}"
mkdir -p "$RUN_DIR"
export RUNTRUST_FINDINGS_FILE="${RUNTRUST_FINDINGS_FILE:-$RUN_DIR/findings.jsonl}" RUNTRUST_QUEUE_DIR="${RUNTRUST_QUEUE_DIR:-$RUN_DIR/queue}"

pids=()
stop_all() {
	trap - INT TERM EXIT
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait || true
}
trap stop_all INT TERM EXIT

# What the collector watches: OTLP always; this machine's containers when the sensor can load (root, kernel BTF);
# a cluster's inventory when KUBECONFIG is set. Each part is a config merged over the local one.
configs=(--config distributions/local/config.yaml)
receivers=otlp
watching=()
if [ "$(id -u)" != 0 ]; then
	echo "make run: no runtime sensor: it loads eBPF programs, which needs root (run make run as root to watch this machine's containers)"
elif [ ! -r /sys/kernel/btf/vmlinux ]; then
	echo "make run: no runtime sensor: the kernel has no BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF=y is needed)"
else
	configs+=(--config distributions/local/sensor.yaml)
	receivers+=", runtimesensor"
	watching+=("this machine's containers (runtime sensor)")
	export RUNTRUST_NODE_NAME="${RUNTRUST_NODE_NAME:-$(hostname)}"
fi
if [ -n "${KUBECONFIG:-}" ]; then
	configs+=(--config distributions/local/inventory.yaml)
	receivers+=", k8sinventory"
	watching+=("the cluster of KUBECONFIG=$KUBECONFIG (inventory receiver)")
	# The sensor's pod watch needs the node name to be the cluster's name for this machine.
	if [ "${receivers#*runtimesensor}" != "$receivers" ] && [ -z "${RUNTRUST_SENSOR_PODS:-}" ]; then
		echo "make run: the sensor names containers, not pods: set RUNTRUST_SENSOR_PODS=true and RUNTRUST_NODE_NAME to this machine's node name in that cluster to add k8s.pod.*"
	fi
else
	echo "make run: no inventory receiver: set KUBECONFIG to read a cluster's workloads"
fi

echo "make run: starting the runtime service (its PostgreSQL in $RUN_DIR/pg; UI on http://${RUNTRUST_HTTP_LISTEN:-localhost:8080}/) and the collector (receivers: $receivers; findings also in $RUNTRUST_FINDINGS_FILE)"

RUNTRUST_JOIN_KEYS="$JOIN_KEY" RUNTRUST_GRPC_LISTEN="$GRPC" RUNTRUST_LOG_FORMAT="${RUNTRUST_LOG_FORMAT:-text}" \
	"$SERVICE" -pg-data-dir "$RUN_DIR/pg" &
pids+=($!)

"$SERVICE" enrol -server "$GRPC" -join-key "$JOIN_KEY" \
	-cluster-uid "${RUNTRUST_CLUSTER_UID:-local}" -cluster-name "${RUNTRUST_CLUSTER_NAME:-local}" \
	-token-file "$RUN_DIR/cluster-token" -wait 120s

RUNTRUST_CLUSTER_TOKEN="$(cat "$RUN_DIR/cluster-token")" RUNTRUST_SERVICE_GRPC="$GRPC" RUNTRUST_LOCAL_RECEIVERS="[$receivers]" \
	"$COLLECTOR" "${configs[@]}" &
pids+=($!)

echo "make run: runtime service UI on http://${RUNTRUST_HTTP_LISTEN:-localhost:8080}/ (API /api/v1/images); collector OTLP in on localhost:4317 (gRPC), localhost:4318 (HTTP). Ctrl-C stops both."
for w in "${watching[@]}"; do echo "make run: watching $w"; done
# When either one exits, stop the other.
wait -n "${pids[@]}"
