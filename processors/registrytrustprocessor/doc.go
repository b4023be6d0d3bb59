// Package registrytrustprocessor flags log records whose container image comes from a registry nobody approved.
//
// For every record that carries an image reference it adds the normalized reference, the registry the node
// pulled from (after mirror mapping), whether that registry is trusted, and whether the tag can move; an untrusted
// registry raises the record's risk. OTTL conditions can mark records trusted or untrusted beyond the lists.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package registrytrustprocessor // import "github.com/runtrust/runtrust/processors/registrytrustprocessor"
