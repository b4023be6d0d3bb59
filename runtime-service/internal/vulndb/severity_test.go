package vulndb

import (
	"testing"

	"github.com/aquasecurity/trivy-db/pkg/types"
)

func TestSeverityWords(t *testing.T) {
	for in, want := range map[string]string{
		"CRITICAL": SeverityCritical, "HIGH": SeverityHigh, "Important": SeverityHigh, "MODERATE": SeverityMedium,
		"medium": SeverityMedium, " LOW ": SeverityLow, "negligible": SeverityLow, "UNKNOWN": SeverityUnknown,
		"untriaged": SeverityUnknown, "": SeverityUnknown,
	} {
		if got := severityFromWord(in); got != want {
			t.Errorf("severityFromWord(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"unimportant": SeverityLow, "low": SeverityLow, "low*": SeverityLow, "medium**": SeverityMedium,
		"high": SeverityHigh, "not yet assigned": SeverityUnknown, "end-of-life": SeverityUnknown, "": SeverityUnknown,
	} {
		if got := severityFromUrgency(in); got != want {
			t.Errorf("severityFromUrgency(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{
		10: SeverityCritical, 9.0: SeverityCritical, 8.9: SeverityHigh, 7.0: SeverityHigh, 6.9: SeverityMedium,
		4.0: SeverityMedium, 3.9: SeverityLow, 0.1: SeverityLow, 0: SeverityUnknown, -1: SeverityUnknown, 11: SeverityUnknown,
	} {
		if got := severityFromScore(in); got != want {
			t.Errorf("severityFromScore(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestCVSSScore(t *testing.T) {
	for _, tc := range []struct {
		vector  string
		score   float64
		version int
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, 3},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, 3},
		{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, 3},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, 3},
		{"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, 3},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3, 4},
	} {
		score, version, err := cvssScore(tc.vector)
		if err != nil || score != tc.score || version != tc.version {
			t.Errorf("cvssScore(%q) = %v, %d, %v; want %v, %d", tc.vector, score, version, err, tc.score, tc.version)
		}
	}
	for _, bad := range []string{"", "AV:N/AC:L/Au:N/C:P/I:P/A:P", "CVSS:3.1/AV:N", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:5.0/AV:N"} {
		if _, _, err := cvssScore(bad); err == nil {
			t.Errorf("cvssScore(%q) scored", bad)
		}
	}
}

// osvRating takes the distro's word, then the database's, then CVSS v3, then CVSS v4.
func TestOSVRating(t *testing.T) {
	const v3High = `{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}`
	const v4Critical = `{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}`
	for _, tc := range []struct {
		name, entry, affected string
		want                  rating
	}{
		{"urgency beats CVSS", `"severity": [` + v3High + `]`, `"ecosystem_specific": {"urgency": "low"}`,
			rating{SeverityLow, 7.8, "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}},
		{"unassigned urgency falls through", `"severity": [` + v3High + `]`, `"ecosystem_specific": {"urgency": "not yet assigned"}`,
			rating{SeverityHigh, 7.8, "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}},
		{"GitHub word beats CVSS", `"database_specific": {"severity": "CRITICAL"}, "severity": [` + v3High + `]`, ``,
			rating{SeverityCritical, 7.8, "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}},
		{"urgency in database_specific", `"database_specific": {"urgency": "high**"}`, ``, rating{severity: SeverityHigh}},
		{"Ubuntu priority", `"severity": [{"type": "Ubuntu", "score": "negligible"}]`, ``, rating{severity: SeverityLow}},
		{"affected-level CVSS first", `"severity": [` + v3High + `]`,
			`"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}]`,
			rating{SeverityHigh, 7.5, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}},
		{"CVSS v4 only", `"severity": [` + v4Critical + `]`, ``, rating{severity: SeverityCritical}},
		{"bad vector", `"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/garbage"}]`, ``, rating{}},
		{"nothing", ``, ``, rating{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entry := `{"id": "X", ` + tc.entry
			if tc.entry != "" {
				entry += ","
			}
			aff := `{"package": {"ecosystem": "Go", "name": "m"}`
			if tc.affected != "" {
				aff += ", " + tc.affected
			}
			vulns, err := decodeOSV([]byte(entry + `"affected": [` + aff + `}]}`))
			if err != nil {
				t.Fatal(err)
			}
			if got := osvRating(vulns[0], vulns[0].GetAffected()[0]); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTrivyRating(t *testing.T) {
	ds := types.DataSource{ID: "ubuntu", BaseID: "debian"}
	for _, tc := range []struct {
		name string
		adv  types.Advisory
		vuln types.Vulnerability
		want rating
	}{
		{"advisory's own", types.Advisory{Severity: types.SeverityCritical},
			types.Vulnerability{VendorSeverity: types.VendorSeverity{"ubuntu": types.SeverityLow}}, rating{severity: SeverityCritical}},
		{"data source's", types.Advisory{},
			types.Vulnerability{VendorSeverity: types.VendorSeverity{"ubuntu": types.SeverityLow, "nvd": types.SeverityHigh}}, rating{severity: SeverityLow}},
		{"base data source's", types.Advisory{},
			types.Vulnerability{VendorSeverity: types.VendorSeverity{"debian": types.SeverityMedium, "nvd": types.SeverityHigh}}, rating{severity: SeverityMedium}},
		{"NVD's", types.Advisory{},
			types.Vulnerability{VendorSeverity: types.VendorSeverity{"redhat": types.SeverityLow, "nvd": types.SeverityHigh}}, rating{severity: SeverityHigh}},
		//lint:ignore SA1019 the deprecated field is still read, so it is tested
		{"legacy field", types.Advisory{}, types.Vulnerability{Severity: "MEDIUM"}, rating{severity: SeverityMedium}},
		{"from the score", types.Advisory{},
			types.Vulnerability{CVSS: types.VendorCVSS{"redhat": {V3Score: 9.1, V3Vector: "v"}}}, rating{SeverityCritical, 9.1, "v"}},
		{"score of the data source first", types.Advisory{Severity: types.SeverityLow},
			types.Vulnerability{CVSS: types.VendorCVSS{"nvd": {V3Score: 9.1}, "ubuntu": {V3Score: 5.5}}}, rating{SeverityLow, 5.5, ""}},
		{"vector without score", types.Advisory{},
			types.Vulnerability{CVSS: types.VendorCVSS{"nvd": {V3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}}},
			rating{SeverityHigh, 7.5, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}},
		{"out of range", types.Advisory{Severity: types.Severity(42)}, types.Vulnerability{}, rating{severity: SeverityUnknown}},
	} {
		if got := trivyRating(tc.adv, &tc.vuln, ds); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
