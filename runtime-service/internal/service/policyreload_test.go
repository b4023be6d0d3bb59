package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/config"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
)

// configMapVolume lays out dir as the kubelet lays out a ConfigMap volume: each key a symlink through ..data,
// which points at a timestamped directory holding the content; update writes a new directory and swaps
// ..data to it with a rename, as the kubelet does.
type configMapVolume struct {
	t   *testing.T
	dir string
	gen int
}

func (v *configMapVolume) update(files map[string]string) {
	v.t.Helper()
	v.gen++
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", v.gen, v.gen)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		v.t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(v.dir, ts, name), []byte(content), 0o644); err != nil {
			v.t.Fatal(err)
		}
		if link := filepath.Join(v.dir, name); v.gen == 1 {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				v.t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
}

type policyFileView struct {
	Kind        string
	Path        string
	LoadedAt    time.Time `json:"loaded_at"`
	SHA256      string
	ReloadError *struct {
		Message string
		At      time.Time
	} `json:"reload_error"`
}

type placementPolicyView struct {
	Configured bool
	File       *policyFileView
	Rules      []struct {
		Name  string
		Allow []string
	}
}

// TestPolicyFilesReloadWhileRunning is the ConfigMap edit on real parts: the service, its own PostgreSQL, its
// real gRPC ingest and HTTP API, started with placement and drift files in a ConfigMap-style volume and a 1s
// reload interval. An edit of the placement rules shows in the API's policy within seconds and the findings
// follow (every live container decided again); a broken edit is refused: the API shows the error, the rules
// before it stay in force, for the policy shown and for containers that arrive meanwhile; the fix clears it.
func TestPolicyFilesReloadWhileRunning(t *testing.T) {
	dir := t.TempDir()
	vol := &configMapVolume{t: t, dir: dir}
	const opsOnly = "rules:\n  - name: tools-in-ops\n    match: {repository: \"tools/*\"}\n    allow: [prod/ops]\n    severity: medium\n"
	const opsAndShop = "rules:\n  - name: tools-in-ops-and-shop\n    match: {repository: \"tools/*\"}\n    allow: [prod/ops, prod/shop]\n    severity: medium\n"
	const driftRules = "rules:\n  - {image: 'reg.example/ci/*'}\n"
	vol.update(map[string]string{"placement.yaml": opsOnly, "drift.yaml": driftRules})
	placementFile, driftFile := filepath.Join(dir, "placement.yaml"), filepath.Join(dir, "drift.yaml")

	pgDir, err := os.MkdirTemp("", "runtime-service-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(pgDir)
	cfg, err := config.Parse([]string{"-grpc-listen", "127.0.0.1:0", "-http-listen", "127.0.0.1:0", "-pg-data-dir", pgDir,
		"-join-key", joinKey, "-placement-file", placementFile, "-drift-file", driftFile, "-policy-reload-interval", "1s"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	svc := start(t, cfg)
	defer svc.stop(t)
	base := "http://" + svc.addrs.HTTP

	conn, err := grpc.NewClient(svc.addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := runtrustv1.NewClusterServiceClient(conn).Enrol(context.Background(),
		&runtrustv1.EnrolRequest{JoinKey: joinKey, ClusterUid: "uid-prod", ClusterName: "prod", CollectorId: "controller"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), ingest.AuthorizationHeader, "Bearer "+resp.GetToken())
	export := func(ld plog.Logs) {
		t.Helper()
		r, err := plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(ld))
		if err != nil || r.PartialSuccess().RejectedLogRecords() != 0 {
			t.Fatalf("export: %v %v", err, r.PartialSuccess().ErrorMessage())
		}
	}
	tool := "sha256:" + strings.Repeat("7", 64)
	pods := []podSpec{{"dig-shop", "shop", "reg.example/tools/dig:1", tool}, {"dig-ops", "ops", "reg.example/tools/dig:1", tool}}
	export(containerLogs(pods))

	policy := func() placementPolicyView {
		t.Helper()
		code, body := get(t, base+"/api/v1/placement/policy")
		var p placementPolicyView
		if code != 200 || json.Unmarshal([]byte(body), &p) != nil {
			t.Fatalf("/api/v1/placement/policy: %d %s", code, body)
		}
		return p
	}
	findings := func() []string {
		t.Helper()
		code, body := get(t, base+"/api/v1/placement/findings")
		var l struct{ Items []placementFinding }
		if code != 200 || json.Unmarshal([]byte(body), &l) != nil {
			t.Fatalf("/api/v1/placement/findings: %d %s", code, body)
		}
		var out []string
		for _, f := range l.Items {
			out = append(out, f.Pod+" "+f.Rule)
		}
		slices.Sort(out)
		return out
	}
	// within polls until ok holds, failing after what seconds.
	within := func(what string, seconds int, ok func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > time.Duration(seconds)*time.Second {
				t.Fatalf("%s: not within %ds", what, seconds)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return time.Since(start)
	}

	// At start: the file's rules, its content in force, no error; the shop pod is a finding.
	p := policy()
	if !p.Configured || len(p.Rules) != 1 || p.Rules[0].Name != "tools-in-ops" || p.File == nil || p.File.Path != placementFile ||
		p.File.SHA256 == "" || p.File.ReloadError != nil || p.File.LoadedAt.IsZero() {
		t.Fatalf("at start: %+v %+v", p, p.File)
	}
	first := *p.File
	if f := findings(); !slices.Equal(f, []string{"dig-shop tools-in-ops"}) {
		t.Fatalf("findings at start: %v", f)
	}
	code, body := get(t, base+"/api/v1/policy/files")
	var files struct{ Items []policyFileView }
	if code != 200 || json.Unmarshal([]byte(body), &files) != nil || len(files.Items) != 2 ||
		files.Items[0].Kind != "placement" || files.Items[1].Kind != "drift" || files.Items[1].Path != driftFile {
		t.Fatalf("/api/v1/policy/files: %d %s", code, body)
	}

	// The ConfigMap is edited: the new rules are in force within seconds, and the shop pod is allowed now.
	vol.update(map[string]string{"placement.yaml": opsAndShop, "drift.yaml": driftRules})
	took := within("the edited policy in the API", 10, func() bool {
		p = policy()
		return len(p.Rules) == 1 && p.Rules[0].Name == "tools-in-ops-and-shop"
	})
	t.Logf("the edit was in force after %v", took.Round(10*time.Millisecond))
	if p.File.SHA256 == first.SHA256 || !p.File.LoadedAt.After(first.LoadedAt) || p.File.ReloadError != nil ||
		!slices.Equal(p.Rules[0].Allow, []string{"prod/ops", "prod/shop"}) {
		t.Errorf("after the edit: %+v %+v", p, p.File)
	}
	within("the findings under the edited policy", 10, func() bool { return len(findings()) == 0 })
	edited := *p.File

	// A broken edit: refused. The API shows why, and the rules before it stay, for new containers too.
	vol.update(map[string]string{"placement.yaml": "rules:\n  - name: tools\n    allow: [a/b/c]\n", "drift.yaml": driftRules})
	within("the reload error in the API", 10, func() bool { p = policy(); return p.File.ReloadError != nil })
	if msg := p.File.ReloadError.Message; !strings.Contains(msg, "placement file "+placementFile) || !strings.Contains(msg, `"a/b/c"`) {
		t.Errorf("reload error: %q", msg)
	}
	if len(p.Rules) != 1 || p.Rules[0].Name != "tools-in-ops-and-shop" || p.File.SHA256 != edited.SHA256 || !p.File.LoadedAt.Equal(edited.LoadedAt) {
		t.Errorf("the policy in force moved with a broken edit: %+v %+v", p, p.File)
	}
	export(containerLogs(append(pods, podSpec{"dig-lab", "lab", "reg.example/tools/dig:1", tool})))
	if f := findings(); !slices.Equal(f, []string{"dig-lab tools-in-ops-and-shop"}) {
		t.Errorf("findings while the broken edit is refused: %v", f)
	}
	code, body = get(t, base+"/api/v1/policy/files")
	if code != 200 || json.Unmarshal([]byte(body), &files) != nil || files.Items[0].ReloadError == nil || files.Items[1].ReloadError != nil {
		t.Errorf("/api/v1/policy/files with the broken edit: %d %s", code, body)
	}

	// The fix: in force, the error cleared, the lab pod judged by it.
	vol.update(map[string]string{"placement.yaml": strings.Replace(opsAndShop, "prod/shop]", "prod/shop, prod/lab]", 1), "drift.yaml": driftRules})
	within("the fixed policy in the API", 10, func() bool {
		p = policy()
		return p.File.ReloadError == nil && len(p.Rules) == 1 && len(p.Rules[0].Allow) == 3
	})
	within("the findings under the fixed policy", 10, func() bool { return len(findings()) == 0 })
}
