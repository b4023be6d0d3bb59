package imageintegrityprocessor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry"
	"github.com/runtrust/runtrust/internal/risk"
)

// query is what one verdict depends on; records that agree on it share one judgement per batch.
type query struct {
	repo    registry.Repo // where the registry is asked (after mirror mapping)
	shown   string        // the reference as the record names it, normalized, for messages
	tag     string        // the tag to resolve; "" when pinned
	pin     string        // the digest the reference pins; "" when not pinned
	running string        // the digest the container runs
	bareID  bool          // running came as a bare image id, not a repository digest
}

// outcome is a verdict with what explains it.
type outcome struct {
	integrity string
	expected  string    // the tag's digest now (or the pin)
	reason    string    // an IntegrityReason value, for unverified
	detail    string    // the reasons entry after "code: "
	checkedAt time.Time // when the registry gave the answer the verdict rests on; for unverified, the last good one
	// remedy says which remediation applies (stale: by pull policy).
	remedy remedy

	// Formatted once per outcome by finish, not per record.
	finished      bool
	checkedAtText string
	reasonEntry   string // the runtrust.risk.reasons entry; "" for verified
}

func (o *outcome) finish() {
	o.finished = true
	if !o.checkedAt.IsZero() {
		o.checkedAtText = o.checkedAt.UTC().Format(time.RFC3339)
	}
	if o.integrity != records.IntegrityVerified {
		o.reasonEntry = risk.Reason(o.integrity, o.detail)
	}
}

type remedy int

const (
	remedyNone remedy = iota
	remedyStale
	remedyPinnedDiffers
	remedyMismatch
	remedyMissing
)

// severities of the verdicts (../shared/design.md, "Integrity verdicts").
var severity = map[string]string{
	records.IntegrityVerified:        records.SeverityNone,
	records.IntegrityStaleTag:        records.SeverityMedium,
	records.IntegrityDigestMismatch:  records.SeverityCritical,
	records.IntegrityArtifactMissing: records.SeverityHigh,
	records.IntegrityUnverified:      records.SeverityLow,
}

// judge asks the registry what it needs to, and no more: the tag (or pin), then, only when the running digest
// is neither it nor in its index, the running digest itself.
func judge(ctx context.Context, c *registry.Client, q query) outcome {
	var (
		target registry.Answer
		err    error
	)
	if q.pin != "" {
		target, err = c.Digest(ctx, q.repo, q.pin)
	} else {
		target, err = c.Tag(ctx, q.repo, q.tag)
	}
	if err != nil {
		return failed(q, err, true)
	}
	o := outcome{expected: target.Digest, checkedAt: target.CheckedAt}
	if q.running == target.Digest {
		o.integrity = records.IntegrityVerified
		return o
	}
	if p, ok := target.Lists(q.running); ok {
		o.integrity = records.IntegrityVerified
		o.detail = fmt.Sprintf("runs the %s manifest of index %s", platformName(p), target.Digest)
		return o
	}
	running, err := c.Digest(ctx, q.repo, q.running)
	if err != nil {
		var re *registry.Error
		if errors.As(err, &re) && re.Kind == registry.KindNotFound {
			if q.bareID {
				u := unverified(records.IntegrityReasonImageID, target.CheckedAt,
					fmt.Sprintf("the runtime reports %s, a bare image id (the config digest), not a repository digest, and %s holds no manifest by it; it cannot be compared with %s",
						q.running, q.repo, target.Digest))
				u.expected = target.Digest
				return u
			}
			o.integrity = records.IntegrityDigestMismatch
			o.remedy = remedyMismatch
			o.detail = fmt.Sprintf("the container runs %s, which %s never held (%s is %s): the image did not come from this repository",
				q.running, q.repo, q.shown, target.Digest)
			return o
		}
		return failed(q, err, false)
	}
	if running.IsIndex() {
		if p, ok := running.Lists(target.Digest); ok {
			// The reverse multi-arch case: the node reports the index, the tag names one of its manifests.
			o.integrity = records.IntegrityVerified
			o.detail = fmt.Sprintf("runs index %s, whose %s manifest %s is", q.running, platformName(p), q.shown)
			return o
		}
	}
	o.integrity = records.IntegrityStaleTag
	if q.pin != "" {
		o.remedy = remedyPinnedDiffers
		o.detail = fmt.Sprintf("the container runs %s, which %s holds, but its reference pins %s", q.running, q.repo, q.pin)
		return o
	}
	o.remedy = remedyStale
	o.detail = fmt.Sprintf("%s now points at %s; the container runs %s, an earlier build %s still holds",
		q.shown, target.Digest, q.running, q.repo)
	return o
}

// failed turns a lookup error into a verdict: a missing tag, pin or repository is artifact_missing; anything
// else is unverified with the reason, never a guess.
func failed(q query, err error, asTarget bool) outcome {
	var re *registry.Error
	if !errors.As(err, &re) {
		return unverified(records.IntegrityReasonRegistryError, time.Time{}, err.Error())
	}
	if re.Kind == registry.KindNotFound && asTarget {
		what := fmt.Sprintf("tag %q", q.tag)
		if q.pin != "" {
			what = "the pinned digest " + q.pin
		}
		return outcome{
			integrity: records.IntegrityArtifactMissing,
			expected:  q.pin,
			remedy:    remedyMissing,
			detail: fmt.Sprintf("%s of %s is gone from the registry (%s) while the container still runs %s",
				what, q.repo, re.Detail, q.running),
		}
	}
	reason := reasonOf(re.Kind)
	detail := re.Error()
	if !re.LastGood.IsZero() {
		detail += fmt.Sprintf("; last good answer %s ago", time.Since(re.LastGood).Round(time.Second))
	}
	return unverified(reason, re.LastGood, detail)
}

func unverified(reason string, lastGood time.Time, detail string) outcome {
	return outcome{integrity: records.IntegrityUnverified, reason: reason, checkedAt: lastGood,
		detail: reason + ": " + detail}
}

func reasonOf(k registry.Kind) string {
	switch k {
	case registry.KindTimeout:
		return records.IntegrityReasonTimeout
	case registry.KindUnreachable:
		return records.IntegrityReasonUnreachable
	case registry.KindUnauthorized:
		return records.IntegrityReasonUnauthorized
	case registry.KindRateLimited:
		return records.IntegrityReasonRateLimited
	case registry.KindNotConfigured:
		return records.IntegrityReasonNotConfigured
	default:
		return records.IntegrityReasonRegistryError
	}
}

// remediation is the hint for an actionable verdict; for a stale tag it follows the pull policy.
func remediation(o outcome, pullPolicy string) string {
	switch o.remedy {
	case remedyStale:
		switch strings.ToLower(pullPolicy) {
		case "always":
			return fmt.Sprintf("imagePullPolicy is Always, so the pod started before the tag moved: restart it to run %s, "+
				"or pin the digest (image: …@%s) so a tag move cannot change what runs", o.expected, o.expected)
		case "never":
			return fmt.Sprintf("imagePullPolicy is Never: the node runs whatever it was loaded with; pin the digest "+
				"(image: …@%s) and load that image, or use IfNotPresent with a pinned digest", o.expected)
		default:
			policy := "IfNotPresent"
			if pullPolicy == "" {
				policy = "not reported (IfNotPresent unless the tag is latest)"
			}
			return fmt.Sprintf("imagePullPolicy is %s, so nodes keep the image they pulled first: pin the digest "+
				"(image: …@%s), or set imagePullPolicy: Always, then restart the pod", policy, o.expected)
		}
	case remedyPinnedDiffers:
		return fmt.Sprintf("restart the pod so that it runs the pinned %s", o.expected)
	case remedyMismatch:
		return "treat the node as compromised until explained: compare its image store with the registry, check the mirror or proxy it pulls through, and redeploy from the registry by digest"
	case remedyMissing:
		return "find out who deleted it; republish the image or move the workload to an artifact the registry still holds"
	}
	return ""
}

func platformName(p registry.Platform) string {
	if p.Platform == "" {
		return "platform"
	}
	return p.Platform
}
