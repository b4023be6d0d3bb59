package ui_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/provenance"
	pt "github.com/runtrust/runtrust/runtime-service/internal/provenance/provenancetest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// TestBrowserProvenance: an image signed keyless-style (a certificate from a test CA) with SLSA provenance, and
// one whose signature was tampered with, run from a loopback registry. The image page's provenance card shows
// the signer's identity and the build facts; the tampered one shows signature_invalid; the Policy view lists the
// rule and the finding, linking to the image.
func TestBrowserProvenance(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithReferrers())
	dir := t.TempDir()
	ca := pt.NewCA(t)
	ca.WriteRoot(t, dir, "root.pem")
	signer := ca.Keyless(t, "release@corp.example", "https://accounts.corp.example")
	file := filepath.Join(dir, "provenance.yaml")
	if err := os.WriteFile(file, []byte(`trusted_root: root.pem
rules:
  - name: shop-signed
    match: {repository: "shop/*"}
    identities: [{subject: release@corp.example, issuer: "https://accounts.corp.example"}]
    require: [signature, provenance]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	b := pt.Build{BuilderID: "https://github.com/actions/runner/github-hosted", Repository: "https://github.com/corp/shop",
		Ref: "refs/heads/main", Commit: "8f3c2a1d9e0b", InvocationID: "https://github.com/corp/shop/actions/runs/4242/attempts/1"}
	good, bad := reg.PushImage(t, "shop/web:1"), reg.PushImage(t, "shop/api:1")
	gd, _ := name.NewDigest(reg.Ref("shop/web") + "@" + good)
	bd, _ := name.NewDigest(reg.Ref("shop/api") + "@" + bad)
	pt.SignImage(t, gd, signer, pt.Tag, pt.Options{})
	pt.BundleProvenance(t, gd, signer, b)
	pt.SignImage(t, bd, signer, pt.Referrer, pt.Options{Tamper: true})
	pt.AttestProvenance(t, bd, signer, b, pt.Referrer, pt.Options{})

	s := startService(t, 1, "-provenance-file", file)
	prod := s.enrol(t, 0, "uid-prod", "prod", runtrustv1.Mode_MODE_INTEGRITY, 1)
	now := time.Now()
	img := func(ref, d string) image {
		return image{ref: ref, digest: d, expected: d, verdict: records.IntegrityVerified, severity: records.SeverityNone, trusted: true, pullPolicy: "IfNotPresent"}
	}
	prod.send(t, append(append([]rec{node(now, "node-a")},
		containers(now, img(reg.Ref("shop/web:1"), good), workload{"Deployment", "web", "shop", []string{"node-a"}, 1})...),
		containers(now, img(reg.Ref("shop/api:1"), bad), workload{"Deployment", "api", "shop", []string{"node-a"}, 1})...)...)
	// The service's checker looks for new images every 15 s; a pass of the same checker, under the same policy,
	// saves the wait.
	pol, err := provenance.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, s.dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	provenance.New(st, provenance.Options{Policy: pol}, slog.New(slog.NewTextHandler(io.Discard, nil))).Pass(ctx)
	st.Close()

	bctx := browser(t)
	open(t, bctx, s.base+"/#/images/"+good, "image")
	waitFor(t, bctx, `document.querySelector('section.provenance[data-provenance-status]') !== null`)
	screenshot(t, bctx, "image-provenance")
	if st := eval[string](t, bctx, `document.querySelector('section.provenance').dataset.provenanceStatus`); st != "verified" {
		t.Fatalf("status %q", st)
	}
	facts := eval[map[string]string](t, bctx, `Object.fromEntries([...document.querySelectorAll('.provenance-card dd[data-field]')].map(d => [d.dataset.field, d.textContent]))`)
	for field, want := range map[string]string{"builder_id": b.BuilderID, "source_repo": b.Repository, "commit": b.Commit,
		"build_id": b.InvocationID, "ci_url": b.InvocationID, "ref": b.Ref} {
		if facts[field] != want {
			t.Errorf("card %s = %q, want %q", field, facts[field], want)
		}
	}
	if href := eval[string](t, bctx, `document.querySelector('.provenance-card dd[data-field="ci_url"] a')?.getAttribute('href') ?? ''`); href != b.InvocationID {
		t.Errorf("CI link %q", href)
	}
	if sig := eval[string](t, bctx, `document.querySelector('table.signatures tbody tr[data-verified="true"]')?.textContent ?? ''`); !strings.Contains(sig, "release@corp.example") {
		t.Errorf("signature row %q", sig)
	}

	open(t, bctx, s.base+"/#/images/"+bad, "image")
	waitFor(t, bctx, `document.querySelector('section.provenance[data-provenance-status]') !== null`)
	if f := eval[string](t, bctx, `document.querySelector('section.provenance li[data-finding]')?.textContent ?? ''`); !strings.HasPrefix(f, "signature_invalid") ||
		!strings.Contains(f, "does not verify with its certificate's key") {
		t.Errorf("tampered image finding %q", f)
	}

	open(t, bctx, s.base+"/#/policy", "policy")
	waitFor(t, bctx, `document.querySelector('table.provenance-rules') !== null`)
	screenshot(t, bctx, "policy-provenance")
	if r := eval[string](t, bctx, `document.querySelector('table.provenance-rules tr[data-rule="shop-signed"]')?.textContent ?? ''`); !strings.Contains(r, "release@corp.example from https://accounts.corp.example") ||
		!strings.Contains(r, "signature, provenance") {
		t.Errorf("rule row %q", r)
	}
	rows := eval[[]string](t, bctx, `[...document.querySelectorAll('table.provenance-findings tbody tr')].map(r => r.dataset.findings + ' ' + r.querySelector('a').getAttribute('href'))`)
	if len(rows) != 1 || rows[0] != "signature_invalid #/images/"+strings.ReplaceAll(bad, ":", "%3A") {
		t.Errorf("finding rows %q", rows)
	}
}
