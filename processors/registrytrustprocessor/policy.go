package registrytrustprocessor

import (
	"context"
	"errors"
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

// newPolicy parses the conditions once. The error joins every condition that fails to parse, each named by its
// list and index (the caller puts "policy." before them).
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
		return p, fmt.Errorf("creating the OTTL parser: %w", err)
	}
	trusted, trustedErr := parseConditions(parser, set, "trusted_when", cfg.TrustedWhen)
	untrusted, untrustedErr := parseConditions(parser, set, "untrusted_when", cfg.UntrustedWhen)
	if err := errors.Join(trustedErr, untrustedErr); err != nil {
		return p, err
	}
	return policy{trustedWhen: trusted, untrustedWhen: untrusted}, nil
}

// parseConditions parses one list of conditions into a sequence; nil for an empty list.
func parseConditions(parser ottl.Parser[*ottllog.TransformContext], set component.TelemetrySettings, field string,
	conditions []string) (*ottl.ConditionSequence[*ottllog.TransformContext], error) {
	if len(conditions) == 0 {
		return nil, nil
	}
	parsed := make([]*ottl.Condition[*ottllog.TransformContext], len(conditions))
	var errs []error
	for i, text := range conditions {
		c, err := parser.ParseCondition(text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", field, i, err))
		}
		parsed[i] = c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// A condition that fails to evaluate on one record (say, a type mismatch) is logged and counts as false:
	// one odd record must not stop the pipeline.
	seq := ottllog.NewConditionSequence(parsed, set, ottllog.WithConditionSequenceErrorMode(ottl.IgnoreError))
	return &seq, nil
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
