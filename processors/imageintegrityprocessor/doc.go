// Package imageintegrityprocessor says, for every container record, whether the digest the container runs is
// still what the registry holds for its image reference: verified, stale_tag, digest_mismatch,
// artifact_missing or unverified (with the reason). The registry lookups (cache, singleflight, limits,
// credentials, TLS) live in internal/registry; this package holds the verdicts, the configuration and the
// pipeline glue.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package imageintegrityprocessor // import "github.com/runtrust/runtrust/processors/imageintegrityprocessor"
