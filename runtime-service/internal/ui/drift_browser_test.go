package ui_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
)

// driftImage pushes an image of one layer holding files (path → content) as repoTag and returns its digest.
func driftImage(t *testing.T, reg *registrytest.Registry, repoTag string, files map[string]string) string {
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
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Ref(repoTag))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	var d v1.Hash
	if d, err = img.Digest(); err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestBrowserDrift: an image with known files runs from a loopback registry and its container executes a program
// of the image, one dropped in, one overwritten, one from a memfd and runc's memfd. The running service's drift
// checker indexes the image and judges them; the image page's processes table shows each verdict (data-drift),
// the severity and the allowing rule, and the index line; the images list flags the image's drift.
func TestBrowserDrift(t *testing.T) {
	reg := registrytest.Start(t)
	d := driftImage(t, reg, "shop/app:1", map[string]string{"bin/sh": "sh", "bin/ls": "ls", "app/run": "run"})
	s := startService(t, 1, "-drift-interval", "1s")
	prod := s.enrol(t, 0, "uid-prod", "prod", runtrustv1.Mode_MODE_IMPACT, 1)
	now := time.Now()
	sum := func(c string) string { h := sha256.Sum256([]byte(c)); return hex.EncodeToString(h[:]) }
	exec := func(path, sha string) rec {
		a := map[string]any{records.AttrContainerID: "cid-shop-app-a", records.AttrProcessPID: 7, records.AttrProcessExecutablePath: path}
		if sha != "" {
			a[records.AttrProcessExecutableSHA256] = sha
		}
		if strings.HasPrefix(path, "/memfd:") {
			a[records.AttrFilePathDetached] = true
		}
		return rec{records.EventProcessExec, now, a}
	}
	img := image{ref: reg.Ref("shop/app:1"), digest: d, expected: d, verdict: records.IntegrityVerified, severity: records.SeverityNone,
		trusted: true, pullPolicy: "IfNotPresent"}
	prod.send(t, append(append([]rec{node(now, "node-a")}, containers(now, img, workload{"Deployment", "app", "shop", []string{"node-a"}, 1})...),
		exec("/bin/sh", sum("sh")), exec("/tmp/dropper", sum("dropper")), exec("/bin/ls", sum("evil")),
		exec("/memfd:x", sum("payload")), exec("/memfd:runc_cloned:/proc/self/exe", sum("runc")))...)

	bctx := browser(t)
	// The checker runs every second; reload until it judged all five.
	deadline := time.Now().Add(60 * time.Second)
	for {
		open(t, bctx, s.base+"/#/images/"+d, "image")
		waitFor(t, bctx, `document.querySelector('[data-drift-index]') !== null`)
		if eval[int](t, bctx, `document.querySelectorAll('#processes + table tbody tr:not([data-drift=""])').length`) == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not judged within a minute: %s", eval[string](t, bctx, `document.querySelector('main').innerText.slice(0, 2000)`))
		}
		time.Sleep(500 * time.Millisecond)
	}
	screenshot(t, bctx, "image-drift")
	rows := eval[map[string]string](t, bctx, `Object.fromEntries([...document.querySelectorAll('#processes + table tbody tr')].map(r =>
		[r.dataset.path, r.dataset.drift + ' ' + (r.querySelector('.drift-cell [data-severity]')?.dataset.severity || '-') + ' ' +
			(r.querySelector('[data-drift-allowed]')?.dataset.driftAllowed || '-')]))`)
	for path, want := range map[string]string{
		"/bin/sh":                           "in_image - -",
		"/tmp/dropper":                      "added high -",
		"/bin/ls":                           "modified critical -",
		"/memfd:x":                          "memory high -",
		"/memfd:runc_cloned:/proc/self/exe": "memory - path /memfd:runc_cloned:**",
	} {
		if rows[path] != want {
			t.Errorf("%s: %q, want %q", path, rows[path], want)
		}
	}
	if line := eval[string](t, bctx, `document.querySelector('[data-drift-index]').dataset.driftIndex + ' ' + document.querySelector('[data-drift-index]').textContent`); !strings.HasPrefix(line, "built ") ||
		!strings.Contains(line, "3 files") {
		t.Errorf("index line %q", line)
	}

	if v := eval[string](t, bctx, `document.querySelector('[data-drift-summary]')?.dataset.driftSummary ?? ''`); v != "critical" {
		t.Errorf("summary drift %q", v)
	}

	open(t, bctx, s.base+"/#/images", "images")
	waitFor(t, bctx, `document.querySelector('table.images') !== null`)
	if f := eval[string](t, bctx, `document.querySelector('table.images tbody tr[data-digest="`+d+`"] [data-drift-findings]')?.textContent ?? ''`); f != "drift: 3 critical" {
		t.Errorf("images list drift flag %q", f)
	}
}
