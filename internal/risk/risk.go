// Package risk keeps a record's risk findings consistent across processors: the severity only ever rises, and
// each reason is listed once, however many processors (or passes of the same one) looked at the record.
package risk

import (
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/runtrust/runtrust/internal/records"
)

// Valid reports whether s is one of the severities of the record contract.
func Valid(s string) bool { return records.KnownSeverity(s) }

// Severities lists the valid severities, lowest first, for error messages and docs.
func Severities() []string { return slices.Clone(records.Severities) }

// Max returns the higher of two severities (records.SeverityRank: an unknown one ranks below none).
func Max(a, b string) string {
	if records.SeverityRank(b) > records.SeverityRank(a) {
		return b
	}
	return a
}

// Raise records a finding on attrs: the severity becomes the higher of the one already there and severity, and
// reason is appended to the reasons unless an identical entry is already listed.
func Raise(attrs pcommon.Map, severity, reason string) {
	current := records.SeverityNone
	if v, ok := attrs.Get(records.AttrRiskSeverity); ok {
		current = v.Str()
	}
	attrs.PutStr(records.AttrRiskSeverity, Max(current, severity))
	if reason == "" {
		return
	}
	reasons, ok := attrs.Get(records.AttrRiskReasons)
	if !ok || reasons.Type() != pcommon.ValueTypeSlice {
		attrs.PutEmptySlice(records.AttrRiskReasons).AppendEmpty().SetStr(reason)
		return
	}
	s := reasons.Slice()
	for i := 0; i < s.Len(); i++ {
		if s.At(i).Str() == reason {
			return
		}
	}
	s.AppendEmpty().SetStr(reason)
}

// Reason formats a reasons entry: a stable code a machine can group by, then the detail a person reads.
func Reason(code, detail string) string {
	return code + ": " + detail
}
