package api

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/drift"
	"github.com/runtrust/runtrust/runtime-service/internal/placement"
	"github.com/runtrust/runtrust/runtime-service/internal/policywatch"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// TestPolicyFilesAnswerAsDocumented watches real placement and drift files as the service does: the policy
// endpoints name each file with the content in force; a broken edit shows its reload error while the rules
// shown stay those loaded before; a fix clears it.
func TestPolicyFilesAnswerAsDocumented(t *testing.T) {
	dir := t.TempDir()
	placementFile, driftFile := filepath.Join(dir, "placement.yaml"), filepath.Join(dir, "drift.yaml")
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(placementFile, "rules:\n  - {name: tools, match: {repository: 'tools/*'}, allow: [prod/ops]}\n")
	write(driftFile, "rules:\n  - {image: 'reg.example/ci/*'}\n")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pw, err := policywatch.New(placementFile, placement.LoadFile, policywatch.Options[*placement.Policy]{}, log)
	if err != nil {
		t.Fatal(err)
	}
	dw, err := policywatch.New(driftFile, drift.LoadFile, policywatch.Options[*drift.Policy]{}, log)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.Open(t, store.Options{MaxConns: 4, Placement: pw.Current()})
	s := loadSpec(t)
	h := New(st, log, auth.New(st, auth.ModeNone)).WithPolicyFile(PolicyPlacement, pw.Status).WithPolicyFile(PolicyDrift, dw.Status)

	body := checkResponse(t, s, h, route("/api/v1/placement/policy"), "/api/v1/placement/policy", 200)
	f := m(body["file"])
	if f["kind"] != "placement" || f["path"] != placementFile || f["sha256"] != pw.Status().Hash || f["reload_error"] != nil {
		t.Fatalf("placement file: %v", body)
	}
	loadedAt, err := time.Parse(time.RFC3339Nano, f["loaded_at"].(string))
	if err != nil || !loadedAt.Equal(pw.Status().LoadedAt) {
		t.Errorf("loaded_at %v (%v), want %v", f["loaded_at"], err, pw.Status().LoadedAt)
	}
	body = checkResponse(t, s, h, route("/api/v1/policy/files"), "/api/v1/policy/files", 200)
	items := list(body["items"])
	if len(items) != 2 || m(items[0])["kind"] != "placement" || m(items[1])["kind"] != "drift" || m(items[1])["path"] != driftFile {
		t.Fatalf("files: %v", body)
	}
	checkResponse(t, s, h, route("/api/v1/policy/files"), "/api/v1/policy/files?kind=drift", 400)

	// A broken edit: refused, the error shown with the rules loaded before.
	write(placementFile, "rules:\n  - {name: tools, allow: [a/b/c]}\n")
	if _, changed := pw.Check(); changed {
		t.Fatal("a broken file was put in force")
	}
	body = checkResponse(t, s, h, route("/api/v1/placement/policy"), "/api/v1/placement/policy", 200)
	re := m(m(body["file"])["reload_error"])
	if msg, _ := re["message"].(string); !strings.Contains(msg, "placement file "+placementFile+": rules[0] (tools).allow[0]") || re["at"] == nil {
		t.Errorf("reload error: %v", body["file"])
	}
	if rules := list(body["rules"]); len(rules) != 1 || list(m(rules[0])["allow"])[0] != "prod/ops" {
		t.Errorf("the rules in force moved: %v", body["rules"])
	}
	body = checkResponse(t, s, h, route("/api/v1/policy/files"), "/api/v1/policy/files", 200)
	if items := list(body["items"]); m(items[0])["reload_error"] == nil || m(items[1])["reload_error"] != nil {
		t.Errorf("files after a broken placement edit: %v", body)
	}

	// Fixed: the new rules in force (the store reads them), the error gone, a new hash.
	before := pw.Status().Hash
	write(placementFile, "rules:\n  - {name: tools, match: {repository: 'tools/*'}, allow: [prod/ops, prod/ci]}\n")
	p, changed := pw.Check()
	if !changed {
		t.Fatal("the fix was not put in force")
	}
	st.SetPlacement(p)
	body = checkResponse(t, s, h, route("/api/v1/placement/policy"), "/api/v1/placement/policy", 200)
	if f := m(body["file"]); f["reload_error"] != nil || f["sha256"] == before || len(list(m(list(body["rules"])[0])["allow"])) != 2 {
		t.Errorf("after the fix: %v", body)
	}

	// Without files: no file, an empty list.
	h = New(st, log, auth.New(st, auth.ModeNone))
	if b := checkResponse(t, s, h, route("/api/v1/placement/policy"), "/api/v1/placement/policy", 200); b["file"] != nil {
		t.Errorf("no file: %v", b)
	}
	if b := checkResponse(t, s, h, route("/api/v1/policy/files"), "/api/v1/policy/files", 200); len(list(b["items"])) != 0 {
		t.Errorf("no files: %v", b)
	}
}
