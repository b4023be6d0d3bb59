package service

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/runtime-service/internal/config"
)

// TestRegistriesFileIsListedAtStart: a service started with -registries-file lists the registry in the
// background at once, and says so in /api/v1/registries, the artifacts and /metrics.
func TestRegistriesFileIsListedAtStart(t *testing.T) {
	reg := registrytest.Start(t)
	reg.PushImage(t, "acme/web:1")
	dir := t.TempDir()
	file := filepath.Join(dir, "registries.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("registries:\n- {name: local, kind: oci, url: 'http://%s', tls: {insecure: true}}\n", reg.Host)), 0o600); err != nil {
		t.Fatal(err)
	}
	pgDir, err := os.MkdirTemp("", "runtime-service-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(pgDir)
	cfg, err := config.Parse([]string{"-grpc-listen", "127.0.0.1:0", "-http-listen", "127.0.0.1:0", "-pg-data-dir", pgDir,
		"-registries-file", file}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	svc := start(t, cfg)
	defer svc.stop(t)
	base := "http://" + svc.addrs.HTTP
	deadline := time.Now().Add(time.Minute)
	for {
		code, body := get(t, base+"/api/v1/registries")
		var regs struct {
			Items []struct{ Name, Status string }
		}
		if code != 200 || json.Unmarshal([]byte(body), &regs) != nil || len(regs.Items) != 1 {
			t.Fatalf("/api/v1/registries: %d %s", code, body)
		}
		if regs.Items[0].Status == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not listed within a minute: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := get(t, base+"/api/v1/artifacts?registry=local"); code != 200 || !strings.Contains(body, `"ref":"`+reg.Host+`/acme/web:1"`) {
		t.Fatalf("/api/v1/artifacts: %d %s", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, `runtrust_registry_refreshes_total{registry="local",result="ok"} 1`) {
		t.Fatalf("/metrics: %d", code)
	}
}
