package risk

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/runtrust/runtrust/internal/records"
)

func TestRaiseKeepsHighestSeverity(t *testing.T) {
	tests := []struct {
		name     string
		existing string // "" means no severity yet
		raise    string
		want     string
	}{
		{"first finding", "", records.SeverityHigh, records.SeverityHigh},
		{"higher wins", records.SeverityMedium, records.SeverityCritical, records.SeverityCritical},
		{"lower does not lower", records.SeverityCritical, records.SeverityLow, records.SeverityCritical},
		{"equal stays", records.SeverityHigh, records.SeverityHigh, records.SeverityHigh},
		{"unknown existing ranks as none", "bogus", records.SeverityLow, records.SeverityLow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs := pcommon.NewMap()
			if tt.existing != "" {
				attrs.PutStr(records.AttrRiskSeverity, tt.existing)
			}
			Raise(attrs, tt.raise, "")
			got, _ := attrs.Get(records.AttrRiskSeverity)
			if got.Str() != tt.want {
				t.Fatalf("severity = %q, want %q", got.Str(), tt.want)
			}
		})
	}
}

func TestRaiseListsEachReasonOnce(t *testing.T) {
	attrs := pcommon.NewMap()
	a := Reason("untrusted_registry", "registry \"evil.io\" is not trusted")
	b := Reason("stale_tag", "tag moved")
	Raise(attrs, records.SeverityHigh, a)
	Raise(attrs, records.SeverityMedium, b)
	Raise(attrs, records.SeverityHigh, a)
	v, ok := attrs.Get(records.AttrRiskReasons)
	if !ok {
		t.Fatal("no reasons attribute")
	}
	got := v.Slice().AsRaw()
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("reasons = %v, want [%q %q]", got, a, b)
	}
}

func TestRaiseReplacesNonSliceReasons(t *testing.T) {
	attrs := pcommon.NewMap()
	attrs.PutStr(records.AttrRiskReasons, "written by someone else as a string")
	Raise(attrs, records.SeverityLow, "x: y")
	v, _ := attrs.Get(records.AttrRiskReasons)
	if v.Type() != pcommon.ValueTypeSlice || v.Slice().Len() != 1 {
		t.Fatalf("reasons = %v, want a one-entry slice", v.AsRaw())
	}
}

func TestValid(t *testing.T) {
	for _, s := range Severities() {
		if !Valid(s) {
			t.Errorf("Valid(%q) = false", s)
		}
	}
	if Valid("severe") {
		t.Error(`Valid("severe") = true`)
	}
}
