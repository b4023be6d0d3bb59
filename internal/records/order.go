package records

import "slices"

// The order of verdicts and severities, defined here once: the processors count and raise by it, the service
// stores its ranks (an image running under several verdicts shows its worst) and serves it to the UI, which draws
// its filters and legends from it.

// Severities are the values of AttrRiskSeverity, lowest first.
var Severities = []string{SeverityNone, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// Verdicts are the values of AttrImageIntegrity ordered by the severity each carries, best first: verified, then
// unverified (the registry could not say), stale_tag, artifact_missing, digest_mismatch.
var Verdicts = []string{IntegrityVerified, IntegrityUnverified, IntegrityStaleTag, IntegrityArtifactMissing, IntegrityDigestMismatch}

// SeverityRank is a severity's place in Severities counted from 1 (none) to 5 (critical). An absent or unknown
// severity ranks 0, below none: no processor judged the record, or one of a newer version did in words this one
// does not know; neither may read as a judgement.
func SeverityRank(s string) int { return slices.Index(Severities, s) + 1 }

// VerdictRank is a verdict's place in Verdicts counted from 1 (verified) to 5 (digest_mismatch). An absent or
// unknown verdict ranks 0, "not assessed": never verified (a verdict this version does not know says nothing
// about the image), and never worse than a verdict that was assessed.
func VerdictRank(v string) int { return slices.Index(Verdicts, v) + 1 }

// KnownSeverity and KnownVerdict say whether a value is one this version defines.
func KnownSeverity(s string) bool { return SeverityRank(s) > 0 }

// KnownVerdict says whether v is one of Verdicts.
func KnownVerdict(v string) bool { return VerdictRank(v) > 0 }

// WorstFirst returns the values of order (Severities or Verdicts) worst first, as lists and filters show them.
func WorstFirst(order []string) []string {
	out := slices.Clone(order)
	slices.Reverse(out)
	return out
}
