package imageintegrityprocessor

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/runtrust/runtrust/internal/imageattr"
	"github.com/runtrust/runtrust/internal/imageref"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry"
	"github.com/runtrust/runtrust/internal/registryrule"
	"github.com/runtrust/runtrust/internal/risk"
	"github.com/runtrust/runtrust/processors/imageintegrityprocessor/internal/metadata"
)

// maxLogged bounds how many distinct findings are remembered for logging once each.
const maxLogged = 1000

type integrityProcessor struct {
	logger   *zap.Logger
	client   *registry.Client
	mirrors  []registryrule.Mirror
	deadline time.Duration
	tb       *metadata.TelemetryBuilder

	mu     sync.Mutex
	logged map[query]string // last logged verdict+reason per query
}

func newIntegrityProcessor(cfg *Config, set processor.Settings) (*integrityProcessor, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	c, err := cfg.compile(clientHooks{
		observer:  observer{tb: tb},
		userAgent: "runtrust-imageintegrity/" + set.BuildInfo.Version,
		credentialsReloaded: func(err error) {
			if err != nil {
				set.Logger.Warn("a registry credentials file changed but cannot be read; the credentials read before stay in use", zap.Error(err))
				return
			}
			set.Logger.Info("registry credentials files changed; read them again")
		},
	})
	if err != nil {
		tb.Shutdown()
		return nil, err
	}
	return &integrityProcessor{
		logger:   set.Logger,
		client:   c.client,
		mirrors:  c.mirrors,
		deadline: cfg.BatchDeadline,
		tb:       tb,
		logged:   map[query]string{},
	}, nil
}

func (p *integrityProcessor) start(context.Context, component.Host) error {
	p.client.Start()
	return nil
}

func (p *integrityProcessor) shutdown(context.Context) error {
	p.client.Close()
	p.tb.Shutdown()
	return nil
}

// pending is one record waiting for its verdict.
type pending struct {
	attrs pcommon.Map
	q     query
	now   *outcome // a verdict known without asking (bad reference, ...)
}

func (p *integrityProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	var recs []pending
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		resource := rls.At(i).Resource().Attributes()
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				attrs := lrs.At(k).Attributes()
				if q, o, ok := p.queryOf(attrs, resource); ok {
					recs = append(recs, pending{attrs: attrs, q: q, now: o})
				}
			}
		}
	}
	if len(recs) == 0 {
		return ld, nil
	}
	outcomes := p.judgeAll(ctx, recs)
	var counts [len(verdictAttrs)]int64
	for _, r := range recs {
		o := r.now
		if o == nil {
			o = outcomes[r.q]
		}
		if !o.finished {
			o.finish()
		}
		p.apply(r, o)
		counts[records.VerdictRank(o.integrity)]++
	}
	for i, n := range counts {
		if n > 0 {
			p.tb.ProcessorImageintegrityVerdicts.Add(ctx, n, verdictAttrs[i])
		}
	}
	return ld, nil
}

// judgeAll judges each distinct query once, concurrently, and waits no longer than the batch deadline: what is
// not answered by then is unverified (timeout), while the lookup goes on into the cache.
func (p *integrityProcessor) judgeAll(ctx context.Context, recs []pending) map[query]*outcome {
	out := map[query]*outcome{}
	for _, r := range recs {
		if r.now == nil {
			if _, ok := out[r.q]; !ok {
				out[r.q] = new(outcome)
			}
		}
	}
	dctx, cancel := context.WithTimeout(ctx, p.deadline)
	defer cancel()
	if len(out) == 1 {
		for q, o := range out {
			*o = judge(dctx, p.client, q)
		}
		return out
	}
	var wg sync.WaitGroup
	for q, o := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			*o = judge(dctx, p.client, q)
		}()
	}
	wg.Wait()
	return out
}

// queryOf reads what a record's verdict depends on. ok is false for records the processor does not judge (no
// running digest); o is set when the verdict is known without asking.
func (p *integrityProcessor) queryOf(attrs, resource pcommon.Map) (q query, o *outcome, ok bool) {
	rv, has := attrs.Get(records.AttrImageRunningDigest)
	if !has || rv.Type() != pcommon.ValueTypeStr || rv.Str() == "" {
		return q, nil, false
	}
	rawRunning := rv.Str()
	running, err := imageref.ParseImageID(rawRunning)
	if err != nil {
		bad := unverified(records.IntegrityReasonBadReference, time.Time{}, records.AttrImageRunningDigest+": "+err.Error())
		return q, &bad, true
	}
	q.running = running.Digest
	q.bareID = isBareImageID(rawRunning, running)
	// The inventory receiver writes running_digest as the bare digest of a repository digest and keeps what the
	// runtime reported in container.image.id; bare ids never reach running_digest from it (running_digest_missing
	// says local_image_id instead). So where container.image.id is there, it decides: a repo@sha256 there means a
	// digest the repository must hold, and one it does not hold is a mismatch, not an unverifiable image id.
	if iv, has := attrs.Get(records.AttrContainerImageID); has && iv.Type() == pcommon.ValueTypeStr && iv.Str() != "" {
		if id, err := imageref.ParseImageID(iv.Str()); err == nil && id.Digest == running.Digest {
			q.bareID = isBareImageID(iv.Str(), id)
		}
	}

	ref, err := referenceOf(attrs, resource)
	if err != nil {
		bad := unverified(records.IntegrityReasonBadReference, time.Time{}, err.Error())
		return q, &bad, true
	}
	asked := ref
	if pv, ok := attrs.Get(records.AttrImagePullRef); ok && pv.Str() != "" {
		if pulled, err := imageref.Parse(pv.Str()); err == nil && !pulled.IsImageID() {
			asked = pulled
		}
	} else if pulled, ok := registryrule.Apply(p.mirrors, ref); ok {
		asked = pulled
	}
	q.repo = registry.RepoOf(asked)
	q.shown = ref.String()
	switch {
	case ref.HasDigest():
		q.pin = ref.Digest
	case ref.HasTag():
		q.tag = ref.Tag
	default:
		q.tag = "latest"
		q.shown += ":latest"
	}
	return q, nil, true
}

// isBareImageID says whether raw, as parsed into id, is a runtime's bare image id (the config digest) rather than
// a repository digest: no repository before the digest, or docker:// (docker's own image id, whatever follows).
func isBareImageID(raw string, id imageref.Reference) bool {
	return id.IsImageID() || strings.HasPrefix(raw, "docker://")
}

// referenceOf returns the image reference of a record: runtrust.image.ref when the registrytrust processor
// normalized it, else the image the record (or its resource) names (internal/imageattr).
func referenceOf(attrs, resource pcommon.Map) (imageref.Reference, error) {
	raw, ok := "", false
	if v, has := attrs.Get(records.AttrImageRef); has && v.Str() != "" {
		raw, ok = v.Str(), true
	} else {
		raw, ok = imageattr.Named(attrs, resource)
	}
	if !ok {
		return imageref.Reference{}, errNoReference
	}
	ref, err := imageref.Parse(raw)
	if err != nil {
		return ref, err
	}
	if ref.IsImageID() {
		return ref, errImageIDReference
	}
	return ref, nil
}

type refError string

func (e refError) Error() string { return string(e) }

const (
	errNoReference      = refError("the record has a running digest but no image reference (" + records.AttrImageRef + " or " + records.AttrContainerImageName + ")")
	errImageIDReference = refError("the image reference is a bare image id: there is no repository to ask")
)

// verdictAttrs holds the verdict counter's attribute set for each records.VerdictRank, so a batch counts its
// verdicts without allocating per record. Rank 0, a verdict this version does not define, counts as "unknown":
// never as verified.
var verdictAttrs = func() (out [6]metric.AddOption) {
	out[0] = metric.WithAttributeSet(attribute.NewSet(attribute.String("verdict", "unknown")))
	for _, v := range records.Verdicts {
		out[records.VerdictRank(v)] = metric.WithAttributeSet(attribute.NewSet(attribute.String("verdict", v)))
	}
	return out
}()

func (p *integrityProcessor) apply(r pending, o *outcome) {
	attrs := r.attrs
	attrs.PutStr(records.AttrImageIntegrity, o.integrity)
	if o.expected != "" {
		attrs.PutStr(records.AttrImageExpectedDigest, o.expected)
	} else {
		attrs.Remove(records.AttrImageExpectedDigest)
	}
	if o.reason != "" {
		attrs.PutStr(records.AttrImageIntegrityReason, o.reason)
	} else {
		attrs.Remove(records.AttrImageIntegrityReason)
	}
	if o.checkedAtText != "" {
		attrs.PutStr(records.AttrImageRegistryCheckedAt, o.checkedAtText)
	} else {
		attrs.Remove(records.AttrImageRegistryCheckedAt)
	}
	policy := ""
	if v, ok := attrs.Get(records.AttrImagePullPolicy); ok {
		policy = v.AsString()
	}
	if hint := remediation(*o, policy); hint != "" {
		attrs.PutStr(records.AttrImageRemediation, hint)
	} else {
		attrs.Remove(records.AttrImageRemediation)
	}
	risk.Raise(attrs, severity[o.integrity], o.reasonEntry)
	if o.integrity != records.IntegrityVerified {
		p.logOnce(r.q, o)
	}
}

// logOnce logs a finding at warn level the first time a query gets it (and again when it changes).
func (p *integrityProcessor) logOnce(q query, o *outcome) {
	sig := o.integrity + "|" + o.reason
	p.mu.Lock()
	prev, seen := p.logged[q]
	full := len(p.logged) >= maxLogged
	if seen && prev == sig || !seen && full {
		p.mu.Unlock()
		return
	}
	p.logged[q] = sig
	p.mu.Unlock()
	p.logger.Warn("image integrity: "+o.integrity,
		zap.String("image", q.shown), zap.String("asked", q.repo.String()), zap.String("running_digest", q.running),
		zap.String("reason", o.reason), zap.String("detail", o.detail))
}

// observer feeds the registry client's self-metrics into the component's telemetry.
type observer struct{ tb *metadata.TelemetryBuilder }

func (o observer) Lookup(target string) {
	o.tb.ProcessorImageintegrityLookups.Add(context.Background(), 1, metric.WithAttributes(attribute.String("lookup_target", target)))
}

func (o observer) CacheHit() {
	o.tb.ProcessorImageintegrityCacheHits.Add(context.Background(), 1)
}

func (o observer) Error(kind registry.Kind) {
	o.tb.ProcessorImageintegrityErrors.Add(context.Background(), 1, metric.WithAttributes(attribute.String("error_kind", string(kind))))
}

func (o observer) Request(method string) {
	o.tb.ProcessorImageintegrityRegistryRequests.Add(context.Background(), 1, metric.WithAttributes(attribute.String("http_method", method)))
}
