// Package runtimeexporter ships enriched runtrust records to the runtime service, with nothing lost and nothing
// doubled: it enrols as one collector of its cluster with a join key and keeps its token in a storage extension, sends
// heartbeats, and stamps every queued batch with an idempotency key that travels with the batch through the
// (persistent) sending queue, so retries and restarts replay a batch the service then recognizes.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package runtimeexporter // import "github.com/runtrust/runtrust/exporters/runtimeexporter"
