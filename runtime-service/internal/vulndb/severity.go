package vulndb

import (
	"errors"
	"strings"

	cvss30 "github.com/pandatix/go-cvss/30"
	cvss31 "github.com/pandatix/go-cvss/31"
	cvss40 "github.com/pandatix/go-cvss/40"
)

// Severities, as Finding.Severity spells them.
const (
	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
	SeverityLow      = "low"
	SeverityUnknown  = "unknown"
)

// severityRank orders severities for sorting and for keeping the higher of two: unknown lowest.
func severityRank(s string) int {
	switch s {
	case SeverityCritical:
		return 4
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	}
	return 0
}

// severityFromWord maps a database's word for a severity: GitHub's CRITICAL/HIGH/MODERATE/LOW, Ubuntu's
// priorities (negligible … critical), trivy-db's UNKNOWN…CRITICAL. Anything else is unknown.
func severityFromWord(w string) string {
	switch strings.ToLower(strings.TrimSpace(w)) {
	case "critical":
		return SeverityCritical
	case "high", "important": // "important": Red Hat's word for its second level
		return SeverityHigh
	case "moderate", "medium":
		return SeverityMedium
	case "low", "negligible":
		return SeverityLow
	}
	return SeverityUnknown
}

// severityFromUrgency maps a Debian security tracker urgency. A trailing "*" or "**" marks an urgency the
// tracker inferred; "unimportant" issues are real but minor; "not yet assigned" and "end-of-life" say nothing
// of the flaw itself.
func severityFromUrgency(u string) string {
	switch strings.TrimRight(strings.ToLower(strings.TrimSpace(u)), "*") {
	case "unimportant", "low":
		return SeverityLow
	case "medium":
		return SeverityMedium
	case "high":
		return SeverityHigh
	}
	return SeverityUnknown
}

// severityFromScore is the CVSS qualitative rating of a base score (the same bands in v3 and v4). A score of 0
// ("none", or no score at all) is unknown rather than low: nothing was assessed.
func severityFromScore(score float64) string {
	switch {
	case score >= 9.0 && score <= 10:
		return SeverityCritical
	case score >= 7.0 && score < 9.0:
		return SeverityHigh
	case score >= 4.0 && score < 7.0:
		return SeverityMedium
	case score > 0 && score < 4.0:
		return SeverityLow
	}
	return SeverityUnknown
}

var errCVSSVersion = errors.New("not a CVSS v3.0, v3.1 or v4.0 vector")

// cvssScore is the base score of a CVSS vector and its major version (3 or 4). CVSS v2 vectors carry no
// "CVSS:" prefix and are not scored: Finding.CVSS is a v3 score.
func cvssScore(vector string) (float64, int, error) {
	vector = strings.TrimSpace(vector)
	switch {
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		v, err := cvss31.ParseVector(vector)
		if err != nil {
			return 0, 0, err
		}
		return v.BaseScore(), 3, nil
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		v, err := cvss30.ParseVector(vector)
		if err != nil {
			return 0, 0, err
		}
		return v.BaseScore(), 3, nil
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		v, err := cvss40.ParseVector(vector)
		if err != nil {
			return 0, 0, err
		}
		return v.Score(), 4, nil
	}
	return 0, 0, errCVSSVersion
}

// rating is what a database says of one flaw's severity: the level, and the v3 base score and vector when
// there is one. The zero value is "unknown".
type rating struct {
	severity string
	cvss     float64
	vector   string
}

func (r rating) level() string {
	if r.severity == "" {
		return SeverityUnknown
	}
	return r.severity
}
