package driftcheck_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/runtime-service/internal/drift"
	"github.com/runtrust/runtrust/runtime-service/internal/driftcheck"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// layer is a tar layer of regular files, path → content.
func layer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for p, c := range files {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o755, Typeflag: tar.TypeReg, Size: int64(len(c))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func hexSum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// TestPassIndexesAndJudges: an image with known layers is pushed to a loopback registry and runs; its containers
// executed a program of the image, one the image lacks, one the image has with other content, a memfd program and
// runc's memfd. One pass indexes the image from the registry and judges all five; an image whose registry is
// down is recorded as failed with its error and retried later, and the pass goes on.
func TestPassIndexesAndJudges(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t)
	img, err := mutate.AppendLayers(empty.Image,
		layer(t, map[string]string{"bin/sh": "sh", "bin/ls": "ls"}),
		layer(t, map[string]string{"app/run": "run"}))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Ref("shop/app:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	dg, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	d, down := dg.String(), "sha256:"+strings.Repeat("f", 64)

	st := storetest.Open(t, store.Options{})
	c := storetest.Enrol(t, st, "uid-prod", "prod")
	now := time.Now().UTC().Truncate(time.Second)
	k := func(pod, ref, digest string) store.Container {
		return store.Container{PodUID: "uid-" + pod, Name: "app", ContainerID: "cid-" + pod, Namespace: "shop", PodName: pod,
			NodeName: "node-a", ImageName: ref, ImageRef: ref, RunningDigest: digest, Integrity: records.IntegrityVerified,
			Severity: records.SeverityNone, Time: now}
	}
	x := func(container, digest, path, sha string) store.ExecEvent {
		return store.ExecEvent{Time: now, ContainerID: container, ImageDigest: digest, PID: 7, ExecutablePath: path, SHA256: sha}
	}
	if _, err := st.Apply(ctx, c, "", &store.Batch{
		Containers: []store.Container{k("web", reg.Ref("shop/app:1"), d), k("gone", "127.0.0.1:1/shop/gone:1", down)},
		Execs: []store.ExecEvent{
			x("cid-web", d, "/bin/sh", hexSum("sh")),             // (a) in the image
			x("cid-web", d, "/tmp/dropper", hexSum("dropper")),   // (b) not in the image
			x("cid-web", d, "/bin/ls", hexSum("evil")),           // (c) in the image with other content
			x("cid-web", d, "/memfd:x", hexSum("payload")),       // (d) from memory
			x("cid-web", d, "/memfd:runc_cloned:1", hexSum("r")), // (e) runc's own memfd: allowed
			x("cid-gone", down, "/bin/sh", hexSum("sh")),
		}}); err != nil {
		t.Fatal(err)
	}

	pol, err := drift.Compile(drift.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	chk, err := driftcheck.New(st, driftcheck.Options{Policy: pol}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	chk.Pass(ctx)

	rec, ok, err := st.GetDriftIndex(ctx, d)
	if err != nil || !ok || rec.State != "built" || rec.Files != 3 || rec.Truncated || rec.Bytes != int64(len("shlsrun")) {
		t.Fatalf("index: %+v %v %v", rec, ok, err)
	}
	if rec, ok, err := st.GetDriftIndex(ctx, down); err != nil || !ok || rec.State != "failed" || rec.Error == "" ||
		rec.NextTryAt == nil || !rec.NextTryAt.After(time.Now()) {
		t.Fatalf("registry down: %+v %v %v", rec, ok, err)
	}
	page, err := st.ListDriftFindings(ctx, store.DriftFilter{Filter: store.Filter{Limit: 50}, WithAllowed: true})
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ verdict, severity, allowedBy string }
	wants := map[string]want{
		"/bin/sh":              {"in_image", "none", ""},
		"/tmp/dropper":         {"added", "high", ""},
		"/bin/ls":              {"modified", "critical", ""},
		"/memfd:x":             {"memory", "high", ""},
		"/memfd:runc_cloned:1": {"memory", "none", "path /memfd:runc_cloned:**"},
	}
	if len(page.Items) != len(wants) {
		t.Fatalf("%d findings, want %d: %+v", len(page.Items), len(wants), page.Items)
	}
	for _, f := range page.Items {
		w := wants[f.Path]
		if f.Digest != d || f.Verdict != w.verdict || f.Severity != w.severity || f.AllowedBy != w.allowedBy ||
			len(f.Repositories) != 1 || f.Repositories[0] != reg.Host+"/shop/app" {
			t.Errorf("%s: %+v, want %+v", f.Path, f, w)
		}
	}
	// The image ranks first by its drift: critical.
	imgs, err := st.ListImages(ctx, store.Filter{Limit: 10})
	if err != nil || len(imgs.Items) != 2 || imgs.Items[0].Digest != d || imgs.Items[0].Drift.Severity != "critical" || imgs.Items[0].Drift.Findings != 3 {
		t.Fatalf("images: %+v %v", imgs.Items, err)
	}

	// Nothing is due again under the same rules; an allow rule added judges again and allows the dropper.
	if due, err := st.DriftDue(ctx, pol.Fingerprint(), 10); err != nil || len(due) != 0 {
		t.Fatalf("judged, still due: %+v %v", due, err)
	}
	pol2, err := drift.Compile(drift.Rules{AllowPaths: []string{"/tmp/**"}})
	if err != nil {
		t.Fatal(err)
	}
	chk, err = driftcheck.New(st, driftcheck.Options{Policy: pol2}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	chk.Pass(ctx)
	page, err = st.ListDriftFindings(ctx, store.DriftFilter{Filter: store.Filter{Limit: 50, Digest: d}, Verdicts: []string{"added"}, WithAllowed: true})
	if err != nil || len(page.Items) != 1 || page.Items[0].Severity != "none" || page.Items[0].AllowedBy != "path /tmp/**" {
		t.Fatalf("after the allow rule: %+v %v", page.Items, err)
	}
}

// TestBuildingWhileReading: while an image's layers are being read, Building says so (the API shows it); after,
// it does not.
func TestBuildingWhileReading(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t)
	d := reg.PushImage(t, "shop/slow:1")
	st := storetest.Open(t, store.Options{})
	c := storetest.Enrol(t, st, "uid-prod", "prod")
	now := time.Now().UTC()
	if _, err := st.Apply(ctx, c, "", &store.Batch{
		Containers: []store.Container{{PodUID: "uid-slow", Name: "app", ContainerID: "cid-slow", Namespace: "shop", PodName: "slow",
			NodeName: "node-a", ImageName: reg.Ref("shop/slow:1"), ImageRef: reg.Ref("shop/slow:1"), RunningDigest: d,
			Integrity: records.IntegrityVerified, Severity: records.SeverityNone, Time: now}},
		Execs: []store.ExecEvent{{Time: now, ContainerID: "cid-slow", ImageDigest: d, PID: 1, ExecutablePath: "/bin/sh", SHA256: hexSum("sh")}},
	}); err != nil {
		t.Fatal(err)
	}
	chk, err := driftcheck.New(st, driftcheck.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	reg.SetDelay(time.Second)
	done := make(chan struct{})
	go func() { chk.Pass(ctx); close(done) }()
	seen := false
	for deadline := time.Now().Add(900 * time.Millisecond); time.Now().Before(deadline) && !seen; time.Sleep(10 * time.Millisecond) {
		seen = chk.Building(d)
	}
	<-done
	if !seen || chk.Building(d) {
		t.Fatalf("building seen %v, still building after %v", seen, chk.Building(d))
	}
	if rec, ok, err := st.GetDriftIndex(ctx, d); err != nil || !ok || rec.State != "built" {
		t.Fatalf("after: %+v %v %v", rec, ok, err)
	}
}
