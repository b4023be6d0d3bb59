package registrytrustprocessor

import (
	"context"
	"fmt"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/contexts/ottllog"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/ottlfuncs"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
)

// policy holds the parsed OTTL conditions. A nil *ottl.ConditionSequence means the list is empty.
type policy struct {
	trustedWhen   *ottl.ConditionSequence[*ottllog.TransformContext]
	untrustedWhen *ottl.ConditionSequence[*ottllog.TransformContext]
}

// newPolicy parses the conditions once. An error names the list and the condition that failed to parse.
func newPolicy(cfg PolicyConfig, set component.TelemetrySettings) (policy, error) {
	if set.Logger == nil {
		set.Logger = zap.NewNop()
	}
	var p policy
	if len(cfg.TrustedWhen) == 0 && len(cfg.UntrustedWhen) == 0 {
		return p, nil
	}
	parser, err := ottllog.NewParser(ottlfuncs.StandardConverters[*ottllog.TransformContext](), set)
	if err != nil {
		return p, fmt.Errorf("policy: creating the OTTL parser: %w", err)
	}
	build := func(field string, conditions []string) (*ottl.ConditionSequence[*ottllog.TransformContext], error) {
		if len(conditions) == 0 {
			return nil, nil
		}
		parsed := make([]*ottl.Condition[*ottllog.TransformContext], len(conditions))
		for i, text := range conditions {
			c, err := parser.ParseCondition(text)
			if err != nil {
				return nil, fmt.Errorf("policy.%s[%d]: %w", field, i, err)
			}
			parsed[i] = c
		}
		// A condition that fails to evaluate on one record (say, a type mismatch) is logged and counts as false:
		// one odd record must not stop the pipeline.
		seq := ottllog.NewConditionSequence(parsed, set, ottllog.WithConditionSequenceErrorMode(ottl.IgnoreError))
		return &seq, nil
	}
	if p.trustedWhen, err = build("trusted_when", cfg.TrustedWhen); err != nil {
		return p, err
	}
	if p.untrustedWhen, err = build("untrusted_when", cfg.UntrustedWhen); err != nil {
		return p, err
	}
	return p, nil
}

func (p policy) empty() bool { return p.trustedWhen == nil && p.untrustedWhen == nil }

// decision is what the policy says of one record.
type decision int

const (
	noDecision decision = iota
	decidedTrusted
	decidedUntrusted
)

// decide evaluates untrusted_when first: a record it matches is untrusted whatever else is true.
func (p policy) decide(ctx context.Context, rl plog.ResourceLogs, sl plog.ScopeLogs, lr plog.LogRecord) decision {
	if p.empty() {
		return noDecision
	}
	tCtx := ottllog.NewTransformContext(rl, sl, lr)
	defer tCtx.Close()
	if p.untrustedWhen != nil {
		if match, _ := p.untrustedWhen.Eval(ctx, tCtx); match {
			return decidedUntrusted
		}
	}
	if p.trustedWhen != nil {
		if match, _ := p.trustedWhen.Eval(ctx, tCtx); match {
			return decidedTrusted
		}
	}
	return noDecision
}
