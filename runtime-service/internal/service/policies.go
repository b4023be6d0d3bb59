package service

import (
	"context"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/api"
	"github.com/runtrust/runtrust/runtime-service/internal/correlate"
	"github.com/runtrust/runtrust/runtime-service/internal/drift"
	"github.com/runtrust/runtrust/runtime-service/internal/placement"
	"github.com/runtrust/runtrust/runtime-service/internal/policywatch"
	"github.com/runtrust/runtrust/runtime-service/internal/provenance"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// The policy files (placement, signatures and provenance, drift rules) are mounted from ConfigMaps, which the
// kubelet updates in place: each configured file has a watcher (internal/policywatch) that holds the policy in
// force, and every part reads it from there when it decides, not a copy taken at start. Every
// -policy-reload-interval the watchers read their files again; a change that loads takes effect, one that
// does not is refused (logged, and shown by the API with the policy) and the policy before it stays.

// loadPolicies makes a watcher for each configured policy file, loading it: what config.Parse checked may have
// changed since, and the watcher is to hold the content it hashed. A file that does not load stops the start.
func (s *Service) loadPolicies() error {
	var err error
	interval := s.cfg.PolicyReloadInterval
	if f := s.cfg.PlacementFile; f != "" {
		if s.placementWatch, err = policywatch.New(f, placement.LoadFile,
			policywatch.Options[*placement.Policy]{Interval: interval}, s.log); err != nil {
			return err
		}
	}
	if f := s.cfg.ProvenanceFile; f != "" {
		// The keys and the trusted root the policy names are watched with it: a key rotated in the ConfigMap
		// changes the policy's fingerprint, and every image is checked again.
		if s.provenanceWatch, err = policywatch.New(f, provenance.LoadFile,
			policywatch.Options[*provenance.Policy]{Interval: interval, Related: (*provenance.Policy).Files}, s.log); err != nil {
			return err
		}
	}
	if f := s.cfg.Drift.File; f != "" && s.cfg.Drift.Enabled {
		if s.driftWatch, err = policywatch.New(f, drift.LoadFile,
			policywatch.Options[*drift.Policy]{Interval: interval}, s.log); err != nil {
			return err
		}
	}
	return nil
}

// reloading says whether the policy files are read again while the service runs.
func (s *Service) reloading() bool { return s.cfg.PolicyReloadInterval > 0 }

// placementPolicy is the placement policy to start with: the file's, else the configuration's (set without a
// file, as a test may).
func (s *Service) placementPolicy() *placement.Policy {
	if s.placementWatch != nil {
		return s.placementWatch.Current()
	}
	return s.cfg.Placement
}

// provenancePolicy is the signature and provenance policy in force, nil for none.
func (s *Service) provenancePolicy() *provenance.Policy {
	if s.provenanceWatch != nil {
		return s.provenanceWatch.Current()
	}
	return s.cfg.Provenance
}

// readsProperties says whether the correlator reads Artifactory properties with its listings: for placement
// rules that read labels, and for the Artifactory build beside an image's provenance.
func (s *Service) readsProperties(p *placement.Policy) bool {
	return p.NeedsLabels() || s.provenancePolicy() != nil
}

// withPolicyFiles tells the API where each policy file stands.
func (s *Service) withPolicyFiles(a *api.Handler) *api.Handler {
	if s.placementWatch != nil {
		a = a.WithPolicyFile(api.PolicyPlacement, s.placementWatch.Status)
	}
	if s.provenanceWatch != nil {
		a = a.WithPolicyFile(api.PolicyProvenance, s.provenanceWatch.Status)
	}
	if s.driftWatch != nil {
		a = a.WithPolicyFile(api.PolicyDrift, s.driftWatch.Status)
	}
	return a
}

// startPolicyReload runs the watchers, with -policy-reload-interval 0 none. The provenance and drift checkers
// read the policy in force at each pass and judge again what was judged under another fingerprint, so they
// need nothing more; a new placement policy is put in the store and every live container decided again, as at
// start.
func (s *Service) startPolicyReload(st *store.Store, cor *correlate.Correlator) {
	if !s.reloading() {
		return
	}
	if w := s.placementWatch; w != nil {
		s.started("placement policy reload", runInBackground(func(ctx context.Context) {
			w.Run(ctx, func(ctx context.Context, p *placement.Policy) { s.placementChanged(ctx, st, cor, p) })
		}))
	}
	if w := s.provenanceWatch; w != nil {
		s.started("provenance policy reload", runInBackground(func(ctx context.Context) {
			w.Run(ctx, func(_ context.Context, p *provenance.Policy) {
				s.log.Info("signature and provenance policy reloaded: every running image is checked again", "file", w.Path(),
					"rules", len(p.Rules), "fingerprint", p.Fingerprint)
			})
		}))
	}
	if w := s.driftWatch; w != nil {
		s.started("drift rules reload", runInBackground(func(ctx context.Context) {
			w.Run(ctx, func(context.Context, *drift.Policy) {
				s.log.Info("drift rules reloaded: every program run is judged again", "file", w.Path())
			})
		}))
	}
}

// placementChanged puts a reloaded placement policy in force and decides every live container again. Should
// the database fail meanwhile, it tries again every reload interval until it succeeds (or the service stops):
// decisions half made under the new rules are not left to stand until the next edit.
func (s *Service) placementChanged(ctx context.Context, st *store.Store, cor *correlate.Correlator, p *placement.Policy) {
	st.SetPlacement(p)
	cor.ReadProperties(s.readsProperties(p))
	for {
		start := time.Now()
		err := st.EvaluatePlacement(ctx, nil)
		if err == nil {
			s.log.Info("placement policy reloaded: every live container decided again", "file", s.cfg.PlacementFile,
				"rules", len(p.Rules), "took", time.Since(start).Round(time.Millisecond).String())
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Error("placement policy reloaded, but the live containers could not be decided again; retrying", "error", err,
			"retry_in", s.cfg.PolicyReloadInterval.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.PolicyReloadInterval):
		}
	}
}

// reloadText is -policy-reload-interval for the start log line.
func reloadText(d time.Duration) string {
	if d <= 0 {
		return "off"
	}
	return d.String()
}
