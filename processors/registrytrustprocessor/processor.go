package registrytrustprocessor

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/runtrust/runtrust/internal/imageattr"
	"github.com/runtrust/runtrust/internal/imageref"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registryrule"
	"github.com/runtrust/runtrust/internal/risk"
	"github.com/runtrust/runtrust/processors/registrytrustprocessor/internal/metadata"
)

// maxLoggedInvalid bounds how many distinct invalid references are logged, so a flood of garbage cannot
// flood the log.
const maxLoggedInvalid = 1000

type trustProcessor struct {
	logger *zap.Logger
	tb     *metadata.TelemetryBuilder
	compiled

	mu            sync.Mutex
	loggedInvalid map[string]struct{}
}

func newTrustProcessor(cfg *Config, set component.TelemetrySettings) (*trustProcessor, error) {
	c, err := cfg.compile(set)
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	return &trustProcessor{logger: set.Logger, tb: tb, compiled: c, loggedInvalid: map[string]struct{}{}}, nil
}

func (p *trustProcessor) shutdown(context.Context) error {
	p.tb.Shutdown()
	return nil
}

// outcome is what annotate made of one record, for the self-metrics.
type outcome int

const (
	noImage outcome = iota
	invalidReference
	trustedByList
	untrustedByList
	trustedByPolicy
	untrustedByPolicy
	outcomeCount
)

// judgedAttrs holds the judged counter's attribute set for each outcome that is a judgement, so that a batch is
// counted without allocating per record.
var judgedAttrs = func() (out [outcomeCount]metric.AddOption) {
	set := func(trust, decidedBy string) metric.AddOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String("trust", trust), attribute.String("decided_by", decidedBy)))
	}
	out[trustedByList], out[untrustedByList] = set("trusted", "list"), set("untrusted", "list")
	out[trustedByPolicy], out[untrustedByPolicy] = set("trusted", "policy"), set("untrusted", "policy")
	return out
}()

func (p *trustProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	var counts [outcomeCount]int64
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		resAttrs := rl.Resource().Attributes()
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				counts[p.annotate(ctx, rl, sl, lrs.At(k), resAttrs)]++
			}
		}
	}
	if n := counts[invalidReference]; n > 0 {
		p.tb.ProcessorRegistrytrustInvalidReferences.Add(ctx, n)
	}
	for o, n := range counts {
		if n > 0 && judgedAttrs[o] != nil {
			p.tb.ProcessorRegistrytrustJudged.Add(ctx, n, judgedAttrs[o])
		}
	}
	return ld, nil
}

// verdict is what the lists say about one image reference.
type verdict struct {
	ref     imageref.Reference // as named by the record, normalized
	pulled  imageref.Reference // as pulled, after mirror mapping
	mirror  bool               // pulled differs from ref
	trusted bool
	mutable bool
}

func (p *trustProcessor) annotate(ctx context.Context, rl plog.ResourceLogs, sl plog.ScopeLogs, lr plog.LogRecord, resAttrs pcommon.Map) outcome {
	attrs := lr.Attributes()
	raw, ok := imageattr.Named(attrs, resAttrs)
	if !ok {
		return noImage
	}
	ref, err := imageref.Parse(raw)
	if err != nil {
		attrs.PutStr(records.AttrImageRefError, err.Error())
		p.logInvalid(raw, err)
		return invalidReference
	}
	v := p.judge(ref)
	attrs.PutStr(records.AttrImageRef, v.ref.String())
	if v.mirror {
		attrs.PutStr(records.AttrImagePullRef, v.pulled.String())
	}
	attrs.PutStr(records.AttrRegistryHost, v.pulled.Registry)
	attrs.PutBool(records.AttrImageTagMutable, v.mutable)
	attrs.PutBool(records.AttrRegistryTrusted, v.trusted)

	// The policy runs last, so its conditions can read the findings above.
	switch p.policy.decide(ctx, rl, sl, lr) {
	case decidedUntrusted:
		attrs.PutBool(records.AttrRegistryTrusted, false)
		risk.Raise(attrs, p.untrustedSeverity, risk.Reason(records.ReasonUntrustedByPolicy,
			fmt.Sprintf("image %q matched a policy.untrusted_when condition", v.ref.String())))
		return untrustedByPolicy
	case decidedTrusted:
		attrs.PutBool(records.AttrRegistryTrusted, true)
		return trustedByPolicy
	}
	if !v.trusted {
		risk.Raise(attrs, p.untrustedSeverity, risk.Reason(records.ReasonUntrustedRegistry,
			fmt.Sprintf("registry %q (image %q) is not in trusted_registries", v.pulled.Registry, v.pulled.Name())))
		return untrustedByList
	}
	return trustedByList
}

// judge applies the mirror mapping, the trusted list and the mutable-tag list to a reference.
func (p *trustProcessor) judge(ref imageref.Reference) verdict {
	v := verdict{ref: ref, pulled: ref}
	host, port, _ := registryrule.SplitHostPort(ref.Registry)
	host = strings.ToLower(host)
	for _, m := range p.mirrors {
		if pulled, ok := m.Rewrite(ref, host, port); ok {
			v.pulled, v.mirror = pulled, true
			host, port, _ = registryrule.SplitHostPort(pulled.Registry)
			host = strings.ToLower(host)
			break
		}
	}
	for _, r := range p.rules {
		if r.Matches(host, port, v.pulled.Repository) {
			v.trusted = true
			break
		}
	}
	if !ref.HasDigest() {
		_, moving := p.mutableTags[ref.Tag]
		v.mutable = !ref.HasTag() || moving
	}
	return v
}

func (p *trustProcessor) logInvalid(raw string, err error) {
	p.mu.Lock()
	_, seen := p.loggedInvalid[raw]
	if !seen && len(p.loggedInvalid) < maxLoggedInvalid {
		p.loggedInvalid[raw] = struct{}{}
	} else {
		seen = true
	}
	p.mu.Unlock()
	if !seen {
		p.logger.Warn("record names an invalid image reference; passing it on with "+records.AttrImageRefError,
			zap.Error(err))
	}
}
