package policyfile

import (
	"fmt"
	"strings"

	"github.com/runtrust/runtrust/internal/records"
)

// Severity is a rule's severity: high when not given, else one of critical, high, medium or low (a rule that
// raises nothing is no rule).
func Severity(s string) (string, error) {
	switch {
	case s == "":
		return records.SeverityHigh, nil
	case !records.KnownSeverity(s) || s == records.SeverityNone:
		return s, fmt.Errorf("severity: %q is not critical, high, medium or low", Clip(s))
	}
	return s, nil
}

// Clip shortens a value quoted back in an error to 80 bytes and makes it valid UTF-8: a rule file is
// outside input, and its errors end up in logs and the API.
func Clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
