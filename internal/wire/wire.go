// Package wire is the contract between the runtime exporter and the runtime service's ingest that the protos
// cannot say: the gRPC metadata keys, the bounds on what one request and its identifiers may be, and how the
// service reports the records it refuses (rejections.go). Both sides import it, so neither spells a header, a
// limit or a check of its own. The messages themselves are the standard OTLP LogsService and proto/runtrust/v1.
package wire

import (
	"fmt"
)

// gRPC metadata keys.
const (
	// AuthorizationHeader carries "Bearer <collector token>" on every call but Enrol.
	AuthorizationHeader = "authorization"
	// IdempotencyKeyHeader names an Export request; one sent again under the same key is acknowledged and not
	// applied again (the service remembers keys for a day).
	IdempotencyKeyHeader = "runtrust-idempotency-key"
	// RejectionsTrailer carries, on a partial success, the same google.rpc.Status (with details) that an
	// InvalidArgument would: an OK answer has no status details of its own (see PartialSuccessTrailer).
	RejectionsTrailer = "runtrust-rejections-bin"
)

// bearerPrefix starts the authorization value.
const bearerPrefix = "Bearer "

// Bearer is the authorization value for token.
func Bearer(token string) string { return bearerPrefix + token }

// TokenFromBearer is the token in an authorization value, or false when it is not "Bearer <token>".
func TokenFromBearer(v string) (string, bool) {
	if len(v) <= len(bearerPrefix) || v[:len(bearerPrefix)] != bearerPrefix {
		return "", false
	}
	return v[len(bearerPrefix):], true
}

// Bounds on a request and its identifiers.
const (
	// DefaultMaxRequestBytes bounds one Export request, decompressed, unless the service is configured otherwise.
	DefaultMaxRequestBytes = 8 << 20
	// DefaultRecordsPerSecond is each cluster's sustained rate unless configured otherwise.
	DefaultRecordsPerSecond = 20000
	// DefaultBurst is the most records a cluster may send at once unless configured otherwise.
	DefaultBurst = 100000
	// MaxRecordsPerRequest is the most records one request may carry to pass the default rate limit at all.
	MaxRecordsPerRequest = DefaultBurst

	// MaxIdempotencyKeyLen bounds IdempotencyKeyHeader's value.
	MaxIdempotencyKeyLen = 128
	// MinJoinKeyLen and MaxJoinKeyLen bound a join key.
	MinJoinKeyLen = 16
	MaxJoinKeyLen = 256
	// MaxCollectorIDLen is the longest collector id: a Kubernetes node name (a DNS subdomain) fits, and a
	// sensor's id is its node name.
	MaxCollectorIDLen = 253
)

// CheckJoinKey says why k is not a join key: 16 to 256 printable ASCII characters without spaces.
func CheckJoinKey(k string) error {
	if len(k) < MinJoinKeyLen || len(k) > MaxJoinKeyLen {
		return fmt.Errorf("must be %d to %d characters, got %d", MinJoinKeyLen, MaxJoinKeyLen, len(k))
	}
	return CheckPrintable(k)
}

// CheckCollectorID says why id is not a collector id: at most 253 printable ASCII characters without spaces. It
// shows up in the API and in logs, like the node and Deployment names it is made of. Empty passes: the service
// takes it as a cluster's legacy collector, the exporter requires one.
func CheckCollectorID(id string) error {
	if len(id) > MaxCollectorIDLen {
		return fmt.Errorf("is %d bytes long; at most %d (a node name fits)", len(id), MaxCollectorIDLen)
	}
	return CheckPrintable(id)
}

// CheckIdempotencyKey says why k is not an idempotency key: 1 to 128 printable ASCII characters without spaces.
func CheckIdempotencyKey(k string) error {
	if len(k) == 0 || len(k) > MaxIdempotencyKeyLen {
		return fmt.Errorf("must be 1 to %d characters, got %d", MaxIdempotencyKeyLen, len(k))
	}
	return CheckPrintable(k)
}

// CheckPrintable says why s is not printable ASCII without spaces (0x21 to 0x7e), naming the first bad byte:
// what a value must be to travel in gRPC metadata and show up in logs as it is.
func CheckPrintable(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return fmt.Errorf("must be printable ASCII without spaces (byte %d is 0x%02x)", i, s[i])
		}
	}
	return nil
}
