package ui_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
)

// TestBrowserArtifactsFromRegistry: with a real OCI registry on loopback configured for listing, the artifacts
// page shows the registry's listing, the tag that runs (in use, and where), and the tags nothing ever ran as
// cleanup candidates.
func TestBrowserArtifactsFromRegistry(t *testing.T) {
	reg := registrytest.Start(t)
	running := reg.PushImage(t, "platform/web:1.0")
	reg.PushImage(t, "platform/web:1.1")
	reg.PushImage(t, "tools/debug:old")
	file := filepath.Join(t.TempDir(), "registries.yaml")
	yaml := "registries:\n- {name: corp, kind: oci, url: 'http://" + reg.Host + "', tls: {insecure: true}}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startService(t, 1, "-registries-file", file)
	prod := s.enrol(t, 0, "uid-prod", "prod", runtrustv1.Mode_MODE_INTEGRITY, 1)
	img := image{ref: reg.Ref("platform/web:1.0"), digest: running, expected: running, verdict: records.IntegrityVerified,
		severity: records.SeverityNone, trusted: true, pullPolicy: "IfNotPresent"}
	prod.send(t, append([]rec{node(time.Now(), "node-a")},
		containers(time.Now(), img, workload{"Deployment", "web", "shop", []string{"node-a"}, 2})...)...)

	// The service lists the registry at start; wait for that listing.
	deadline := time.Now().Add(time.Minute)
	for {
		var regs struct {
			Items []struct {
				Name, Status string
				Tags         int
			} `json:"items"`
		}
		apiGet(t, s.base+"/api/v1/registries", &regs)
		if len(regs.Items) == 1 && regs.Items[0].Status == "ok" && regs.Items[0].Tags == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry was not listed within a minute: %+v", regs)
		}
		time.Sleep(200 * time.Millisecond)
	}

	ctx := browser(t)
	open(t, ctx, s.base+"/#/artifacts?registry=corp&usage=unused,never_seen", "artifacts")
	screenshot(t, ctx, "artifacts-registry-cleanup")
	rows := eval[[]string](t, ctx, `[...document.querySelectorAll('table.artifacts tbody tr')].map(r => r.dataset.usage + ' ' + r.dataset.repository + ':' + r.dataset.tag)`)
	slices.Sort(rows)
	if want := []string{"never_seen platform/web:1.1", "never_seen tools/debug:old"}; !slices.Equal(rows, want) {
		t.Fatalf("cleanup candidates: %v, want %v", rows, want)
	}
	if v := eval[string](t, ctx, `document.querySelector('tr[data-registry=corp]').textContent`); !strings.Contains(v, "ok") {
		t.Fatalf("registry row: %q", v)
	}

	open(t, ctx, s.base+"/#/artifacts?registry=corp&sort=registry", "artifacts")
	screenshot(t, ctx, "artifacts-registry")
	inUse := eval[string](t, ctx, `document.querySelector('tr[data-usage=in_use]')?.textContent ?? ''`)
	if !strings.Contains(inUse, "platform/web") || !strings.Contains(inUse, "1.0") || !strings.Contains(inUse, "prod / shop / Deployment web (2 pods)") {
		t.Fatalf("the running tag's row: %q", inUse)
	}
}
