// Package k8sinventoryreceiver watches a Kubernetes cluster's nodes, workloads, pods and containers through
// shared informers and sends one OTLP log record per change (added, updated, deleted), plus a periodic snapshot
// of every object, following the record contract in docs/records.md. Container records carry the image
// reference as written in the pod spec and the digest the container really runs, parsed from the imageID the
// runtime reports; pods and containers name the workload that owns them, resolved through owner references
// (Pod → ReplicaSet → Deployment, Pod → Job → CronJob).
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package k8sinventoryreceiver // import "github.com/runtrust/runtrust/receivers/k8sinventoryreceiver"
