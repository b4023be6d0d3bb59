package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestClassify: what the ingest path tells a collector rests on these: an unavailable store means "nothing was
// stored, retry as is"; anything else is the batch's own fault.
func TestClassify(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("copy exec events: %w", &pgconn.PgError{Code: code}) }
	tests := []struct {
		name        string
		err         error
		unavailable bool
		diskFull    bool
	}{
		{"connection failure", pg("08006"), true, false},
		{"disk full", pg("53100"), true, true},
		{"out of memory", pg("53200"), true, false},
		{"admin shutdown", pg("57P01"), true, false},
		{"serialization failure", pg("40001"), true, false},
		{"unique violation", pg("23505"), false, false},
		{"bad input", pg("22P02"), false, false},
		{"deadline", context.DeadlineExceeded, true, false},
		{"not from the server", errors.New("read tcp: connection reset by peer"), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(tt.err)
			if got := errors.Is(err, ErrUnavailable); got != tt.unavailable {
				t.Errorf("classify(%v) unavailable = %v, want %v", tt.err, got, tt.unavailable)
			}
			if got := DiskFull(err); got != tt.diskFull {
				t.Errorf("DiskFull(classify(%v)) = %v, want %v", tt.err, got, tt.diskFull)
			}
		})
	}
	if classify(nil) != nil {
		t.Error("classify(nil) is not nil")
	}
}
