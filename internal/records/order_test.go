package records

import (
	"slices"
	"testing"
)

func TestSeverityRank(t *testing.T) {
	for _, tc := range []struct {
		severity string
		want     int
	}{
		{"", 0}, {"bogus", 0}, {SeverityNone, 1}, {SeverityLow, 2}, {SeverityMedium, 3}, {SeverityHigh, 4}, {SeverityCritical, 5},
	} {
		if got := SeverityRank(tc.severity); got != tc.want {
			t.Errorf("SeverityRank(%q) = %d, want %d", tc.severity, got, tc.want)
		}
	}
}

// The ranks are stored (the service's placements table): they must not move.
func TestVerdictRank(t *testing.T) {
	for _, tc := range []struct {
		verdict string
		want    int
	}{
		{"", 0}, {"quarantined", 0}, {IntegrityVerified, 1}, {IntegrityUnverified, 2}, {IntegrityStaleTag, 3},
		{IntegrityArtifactMissing, 4}, {IntegrityDigestMismatch, 5},
	} {
		if got := VerdictRank(tc.verdict); got != tc.want {
			t.Errorf("VerdictRank(%q) = %d, want %d", tc.verdict, got, tc.want)
		}
	}
	if KnownVerdict("quarantined") || !KnownVerdict(IntegrityStaleTag) {
		t.Error("KnownVerdict")
	}
}

func TestWorstFirst(t *testing.T) {
	got := WorstFirst(Verdicts)
	want := []string{IntegrityDigestMismatch, IntegrityArtifactMissing, IntegrityStaleTag, IntegrityUnverified, IntegrityVerified}
	if !slices.Equal(got, want) {
		t.Errorf("WorstFirst(Verdicts) = %v, want %v", got, want)
	}
	if Verdicts[0] != IntegrityVerified {
		t.Error("WorstFirst changed its argument")
	}
}
