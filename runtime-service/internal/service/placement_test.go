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

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/config"
	"github.com/runtrust/runtrust/runtime-service/internal/ingest"
)

// pushAnnotated pushes a new random image, with these manifest annotations (go-containerregistry's
// mutate.Annotations), as repo:tag to the loopback registry and returns its digest.
func pushAnnotated(t *testing.T, reg *registrytest.Registry, repoTag string, annotations map[string]string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if annotations != nil {
		img = mutate.Annotations(img, annotations).(v1.Image)
	}
	ref, err := name.ParseReference(reg.Ref(repoTag), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// containerLogs is the inventory's records of pods each running one container: pod name → namespace, ref and
// digest; deleted pods get a pod record with change "deleted".
type podSpec struct{ pod, ns, ref, digest string }

func containerLogs(pods []podSpec, deleted ...string) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	now := pcommon.NewTimestampFromTime(time.Now())
	for _, p := range pods {
		lr := lrs.AppendEmpty()
		lr.SetEventName(records.EventK8sContainer)
		lr.SetTimestamp(now)
		a := lr.Attributes()
		a.PutStr(records.AttrK8sPodUID, "uid-"+p.pod)
		a.PutStr(records.AttrK8sPodName, p.pod)
		a.PutStr(records.AttrK8sContainerName, "app")
		a.PutStr(records.AttrContainerID, "cid-"+p.pod)
		a.PutStr(records.AttrK8sNamespaceName, p.ns)
		a.PutStr(records.AttrK8sNodeName, "node-1")
		a.PutStr(records.AttrK8sWorkloadUID, "wl-"+p.pod)
		a.PutStr(records.AttrK8sWorkloadKind, "Deployment")
		a.PutStr(records.AttrK8sWorkloadName, p.pod)
		a.PutStr(records.AttrContainerImageName, p.ref)
		a.PutStr(records.AttrImageRunningDigest, strings.Split(p.ref, ":")[0]+"@"+p.digest)
		a.PutStr(records.AttrImageRef, p.ref)
		a.PutStr(records.AttrK8sChange, records.ChangeSnapshot)
	}
	for _, pod := range deleted {
		lr := lrs.AppendEmpty()
		lr.SetEventName(records.EventK8sPod)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(time.Second)))
		a := lr.Attributes()
		a.PutStr(records.AttrK8sPodUID, "uid-"+pod)
		a.PutStr(records.AttrK8sPodName, pod)
		a.PutStr(records.AttrK8sNamespaceName, "lab")
		a.PutStr(records.AttrK8sNodeName, "node-1")
		a.PutStr(records.AttrK8sChange, records.ChangeDeleted)
	}
	return ld
}

type placementFinding struct {
	Cluster   struct{ Name string }
	Namespace string
	Pod       string
	Rule      string
	Severity  string
	Reason    string
}

// TestPlacementRuleRefusedInOneNamespaceAllowedInAnother is issue #18's "show" for the placement policy, on
// real parts: a loopback OCI registry holding an image annotated runtrust.allowed_clusters=prod/shop, the
// service started with a placement file and that registry, records over its real gRPC ingest, its own
// PostgreSQL. The same artifact runs in prod/shop (allowed, no finding) and prod/lab (refused: a finding naming
// the label rule); deleting the lab pod clears the finding; a rule by repository glob refuses tools/* outside
// prod/ops; an image no rule selects has no finding.
func TestPlacementRuleRefusedInOneNamespaceAllowedInAnother(t *testing.T) {
	reg := registrytest.Start(t)
	web := pushAnnotated(t, reg, "shop/web:1", map[string]string{"runtrust.allowed_clusters": "prod/shop"})
	tool := pushAnnotated(t, reg, "tools/dig:1", nil)
	other := pushAnnotated(t, reg, "misc/app:1", nil)
	dir := t.TempDir()
	regFile := filepath.Join(dir, "registries.yaml")
	polFile := filepath.Join(dir, "placement.yaml")
	if err := os.WriteFile(regFile, []byte(fmt.Sprintf("registries:\n- {name: local, kind: oci, url: 'http://%s', tls: {insecure: true}}\n", reg.Host)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(polFile, []byte(`rules:
  - name: allowed-by-label
    match: {label: runtrust.allowed_clusters}
    allow_from_label: runtrust.allowed_clusters
  - name: tools-in-ops
    match: {repository: "tools/*"}
    allow: [prod/ops]
    severity: medium
`), 0o600); err != nil {
		t.Fatal(err)
	}
	pgDir, err := os.MkdirTemp("", "runtime-service-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(pgDir)
	cfg, err := config.Parse([]string{"-grpc-listen", "127.0.0.1:0", "-http-listen", "127.0.0.1:0", "-pg-data-dir", pgDir,
		"-join-key", joinKey, "-registries-file", regFile, "-placement-file", polFile}, func(string) string { return "" }, io.Discard)
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
	host := reg.Host
	export(containerLogs([]podSpec{
		{"web-shop", "shop", host + "/shop/web:1", web},
		{"web-lab", "lab", host + "/shop/web:1", web},
		{"dig-shop", "shop", host + "/tools/dig:1", tool},
		{"dig-ops", "ops", host + "/tools/dig:1", tool},
		{"app-lab", "lab", host + "/misc/app:1", other},
	}))

	findings := func() []placementFinding {
		t.Helper()
		code, body := get(t, base+"/api/v1/placement/findings")
		var l struct{ Items []placementFinding }
		if code != 200 || json.Unmarshal([]byte(body), &l) != nil {
			t.Fatalf("/api/v1/placement/findings: %d %s", code, body)
		}
		return l.Items
	}
	pods := func(fs []placementFinding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Pod+" "+f.Rule)
		}
		slices.Sort(out)
		return out
	}
	// The labels are read in the background (the first rule waits for them: pending until then).
	var got []placementFinding
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got = findings()
		if len(got) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("findings after 2 minutes: %+v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if p := pods(got); !slices.Equal(p, []string{"dig-shop tools-in-ops", "web-lab allowed-by-label"}) {
		t.Fatalf("findings: %v", p)
	}
	for _, f := range got {
		switch f.Pod {
		case "web-lab":
			if f.Namespace != "lab" || f.Cluster.Name != "prod" || f.Severity != "high" ||
				f.Reason != `rule "allowed-by-label": namespace lab of cluster prod is not an allowed place; allowed: prod/shop (runtrust.allowed_clusters label: "prod/shop")` {
				t.Errorf("web-lab: %+v", f)
			}
		case "dig-shop":
			if f.Severity != "medium" || !strings.Contains(f.Reason, "allowed: prod/ops") {
				t.Errorf("dig-shop: %+v", f)
			}
		}
	}
	// The image detail: where it runs and whether allowed.
	code, body := get(t, base+"/api/v1/images/"+web)
	var detail struct {
		Placements []struct {
			Namespace string
			Placement *struct{ Status, Rule string }
		}
	}
	if code != 200 || json.Unmarshal([]byte(body), &detail) != nil || len(detail.Placements) != 2 {
		t.Fatalf("/api/v1/images/%s: %d %s", web, code, body)
	}
	for _, p := range detail.Placements {
		want := map[string]string{"shop": "allowed", "lab": "violation"}[p.Namespace]
		if p.Placement == nil || p.Placement.Status != want || p.Placement.Rule != "allowed-by-label" {
			t.Errorf("%s: %+v, want %s", p.Namespace, p.Placement, want)
		}
	}
	// Until its labels are read, the first rule (by label) may select it: pending, then no rule once they are.
	deadline = time.Now().Add(time.Minute)
	for {
		code, body = get(t, base+"/api/v1/images/"+other)
		if code == 200 && strings.Contains(body, `"placement":null`) {
			break
		}
		if time.Now().After(deadline) || (code == 200 && !strings.Contains(body, `"status":"pending"`)) {
			t.Fatalf("the image no rule selects: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, body = get(t, base+"/api/v1/placement/policy")
	if code != 200 || !strings.Contains(body, `"name":"allowed-by-label"`) || !strings.Contains(body, `"allow":["prod/ops"]`) {
		t.Errorf("/api/v1/placement/policy: %d %s", code, body)
	}

	// The lab pod is deleted: its finding clears, the other stays.
	export(containerLogs(nil, "web-lab"))
	if p := pods(findings()); !slices.Equal(p, []string{"dig-shop tools-in-ops"}) {
		t.Fatalf("after deleting web-lab: %v", p)
	}
}
