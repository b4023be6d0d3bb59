package vulnscan_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/internal/sbomtest"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
	"github.com/runtrust/runtrust/runtime-service/internal/vulndb"
	"github.com/runtrust/runtrust/runtime-service/internal/vulnscan"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func openStore(t *testing.T) *store.Store {
	t.Helper()
	return storetest.Open(t, store.Options{})
}

func enrol(t *testing.T, s *store.Store, uid string) store.Cluster {
	t.Helper()
	return storetest.Enrol(t, s, uid, uid)
}

// osvEntry is an OSV advisory against one Debian 12 source package, fixed in fixed ("" for no fix).
func osvEntry(id, pkg, fixed, vector string) string {
	events := `[{"introduced": "0"}]`
	if fixed != "" {
		events = fmt.Sprintf(`[{"introduced": "0"}, {"fixed": %q}]`, fixed)
	}
	return fmt.Sprintf(`{"schema_version": "1.6.0", "id": %q, "aliases": ["CVE-%s"], "modified": "2026-11-01T00:00:00Z",
		"summary": "a flaw in %s", "severity": [{"type": "CVSS_V3", "score": %q}],
		"affected": [{"package": {"ecosystem": "Debian:12", "name": %q}, "ranges": [{"type": "ECOSYSTEM", "events": %s}]}]}`,
		id, id[len(id)-9:], pkg, vector, pkg, events)
}

const (
	critical = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" // 9.8
	high     = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H" // 7.5
	medium   = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N" // 5.4
)

// debianApp is a Debian 12 image with merged /usr: curl (its binary), zlib1g (a library nothing opens) and
// tool, whose dpkg list names /bin/tool, really /usr/bin/tool.
func debianApp(variant string) sbomtest.Spec {
	return sbomtest.Spec{
		OSID: "debian", OSVersion: "12",
		Files: []sbomtest.File{
			{Path: "/bin", Link: "usr/bin"},
			{Path: "/usr/bin/curl", Content: []byte("curl " + variant)},
			{Path: "/usr/bin/tool", Content: []byte("tool " + variant)},
			{Path: "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", Content: []byte("zlib")},
		},
		Deb: []sbomtest.Package{
			{Name: "curl", Version: "7.88.1-10", Source: "curl", Files: []string{"/usr/bin/curl"}},
			{Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Source: "zlib", SourceVersion: "1:1.2.13.dfsg-1", Files: []string{"/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"}},
			{Name: "tool", Version: "2.0-1", Files: []string{"/bin/tool"}},
		},
	}
}

func TestScannerFindsLoadedVulnerabilitiesAndRanksTheImage(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	reg := registrytest.Start(t)
	impactRef, impactDigest := sbomtest.Push(t, reg.Host, "app:impact", sbomtest.Image(t, debianApp("impact")))
	integrityRef, integrityDigest := sbomtest.Push(t, reg.Host, "app:integrity", sbomtest.Image(t, debianApp("integrity")))

	dbDir := t.TempDir()
	writeAdvisory := func(file, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dbDir, file), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeAdvisory("curl.json", osvEntry("DEBIAN-CVE-2026-10001", "curl", "7.88.1-10+deb12u5", critical))
	writeAdvisory("zlib.json", osvEntry("DEBIAN-CVE-2026-10002", "zlib", "1:1.2.13.dfsg-1+deb12u1", critical))
	writeAdvisory("tool.json", osvEntry("DEBIAN-CVE-2026-10003", "tool", "", medium))

	// Cluster "impact": a sensor on node-1 since 20 minutes ago; the container executed curl and /usr/bin/tool.
	now := time.Now().UTC()
	impact := enrol(t, st, "impact")
	container := func(pod, ref, digest string, at time.Time) store.Container {
		return store.Container{PodUID: pod, Name: "app", ContainerID: "cid-" + pod, Namespace: "shop", PodName: pod,
			NodeName: "node-1", WorkloadUID: "wl-" + pod, WorkloadKind: "Deployment", WorkloadName: "app", ImageName: ref,
			ImageRef: ref, RegistryHost: reg.Host, RunningDigest: digest, Integrity: "verified", Severity: "none", Time: at}
	}
	apply := func(c store.Cluster, key string, b *store.Batch) {
		t.Helper()
		if _, err := st.Apply(ctx, c, key, b); err != nil {
			t.Fatal(err)
		}
	}
	apply(impact, "b1", &store.Batch{
		Containers:   []store.Container{container("p1", impactRef, impactDigest, now.Add(-20*time.Minute))},
		SensorHealth: []store.SensorHealth{{NodeName: "node-1", Kernel: "6.1", ProgramStatus: "running", Time: now.Add(-20 * time.Minute)}},
	})
	apply(impact, "b2", &store.Batch{
		SensorHealth: []store.SensorHealth{{NodeName: "node-1", Kernel: "6.1", ProgramStatus: "running", Time: now}},
		Execs: []store.ExecEvent{
			{Time: now.Add(-5 * time.Minute), ContainerID: "cid-p1", PID: 10, ExecutablePath: "/usr/bin/curl", CommandArgs: []string{"curl"}},
			{Time: now.Add(-4 * time.Minute), ContainerID: "cid-p1", PID: 11, ExecutablePath: "/usr/bin/tool", CommandArgs: []string{"tool"}},
		},
	})
	// Cluster "integrity": the same packages, no sensor.
	apply(enrol(t, st, "integrity"), "b1", &store.Batch{Containers: []store.Container{container("p2", integrityRef, integrityDigest, now.Add(-time.Hour))}})

	dbs := []vulndb.Config{{Kind: "osv", Path: dbDir}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sc, err := vulnscan.New(st, vulnscan.Options{Databases: dbs, Window: 10 * time.Minute}, log, vulnscan.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	sc.Pass(ctx)

	reach := func(digest string) map[string]store.VulnFinding {
		t.Helper()
		page, _, err := st.ListVulnerabilities(ctx, store.VulnFilter{Digest: digest, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]store.VulnFinding{}
		for _, f := range page.Items {
			out[f.Package] = f
		}
		return out
	}
	got := reach(impactDigest)
	for pkg, want := range map[string]string{"curl": store.ReachLoaded, "tool": store.ReachLoaded, "zlib1g": store.ReachNotLoaded} {
		f, ok := got[pkg]
		if !ok {
			t.Fatalf("impact image: no finding for %s; findings %v", pkg, got)
		}
		if f.Reachability != want {
			t.Errorf("impact image, %s (%s): %s; want %s", pkg, f.ID, f.Reachability, want)
		}
	}
	if e := got["curl"].Evidence; e == nil || e.Kind != "exec" || e.Path != "/usr/bin/curl" || e.ContainerID != "cid-p1" {
		t.Errorf("curl's evidence: %+v", e)
	}
	if e := got["tool"].Evidence; e == nil || e.Path != "/usr/bin/tool" {
		t.Errorf("tool (listed as /bin/tool on a merged-/usr image) evidence: %+v", e)
	}
	if f := got["curl"]; f.Severity != "critical" || f.Fixed != "7.88.1-10+deb12u5" || f.Installed != "7.88.1-10" {
		t.Errorf("curl finding: %+v", f)
	}
	for pkg, f := range reach(integrityDigest) {
		if f.Reachability != store.ReachUnknown {
			t.Errorf("integrity-mode image, %s: %s; want unknown", pkg, f.Reachability)
		}
	}

	// The loaded critical ranks the impact image first although both are verified and run the same packages.
	images, err := st.ListImages(ctx, store.Filter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(images.Items) != 2 || images.Items[0].Digest != impactDigest {
		t.Fatalf("ranking: %+v; want the impact image first", images.Items)
	}
	if v := images.Items[0].Vulns; v.Loaded != 2 || v.Critical != 2 || v.Total != 3 || v.Rank != 4 {
		t.Errorf("impact image counts %+v", v)
	}

	// A database update is matched again from the stored SBOMs: the registry is not asked again.
	requests := reg.Total()
	writeAdvisory("zlib-2.json", osvEntry("DEBIAN-CVE-2026-10004", "zlib", "", high))
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(filepath.Join(dbDir, "zlib-2.json"), later, later); err != nil {
		t.Fatal(err)
	}
	sc.Pass(ctx)
	if got := reg.Total(); got != requests {
		t.Errorf("the re-match asked the registry %d more times", got-requests)
	}
	page, fun, err := st.ListVulnerabilities(ctx, store.VulnFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 8 {
		t.Fatalf("after the update: %d findings; want 8 (4 per image)", page.Total)
	}
	if fun.All != 8 || fun.CriticalHigh != 6 || fun.Fixable != 4 || fun.Loaded != 1 {
		t.Errorf("funnel %+v; want all 8, critical+high 6, fixable 4, loaded 1", fun)
	}
	if page.Items[0].Reachability != store.ReachLoaded || page.Items[0].Package != "curl" {
		t.Errorf("first finding %+v; want curl's loaded critical", page.Items[0])
	}
}

// An SBOM the database cannot fully check (Debian 11: the mirror holds Debian 12 only) is matched once, with
// what was found, and not tried again each pass as if matching had failed.
func TestScannerKeepsAnIncompleteMatch(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	reg := registrytest.Start(t)
	spec := debianApp("bullseye")
	spec.OSVersion = "11"
	ref, digest := sbomtest.Push(t, reg.Host, "app:bullseye", sbomtest.Image(t, spec))
	dbDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dbDir, "curl.json"), []byte(osvEntry("DEBIAN-CVE-2026-10001", "curl", "7.88.1-10+deb12u5", critical)), 0o644); err != nil {
		t.Fatal(err)
	}
	c := enrol(t, st, "bullseye")
	if _, err := st.Apply(ctx, c, "b1", &store.Batch{Containers: []store.Container{{PodUID: "p", Name: "app", ContainerID: "cid-p",
		Namespace: "shop", PodName: "p", NodeName: "node-1", ImageName: ref, ImageRef: ref, RunningDigest: digest,
		Integrity: "verified", Severity: "none", Time: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	sc, err := vulnscan.New(st, vulnscan.Options{Databases: []vulndb.Config{{Kind: "osv", Path: dbDir}}},
		slog.New(slog.NewTextHandler(io.Discard, nil)), vulnscan.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	sc.Pass(ctx)
	status, err := st.GetSBOMStatus(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	if status.State != store.SBOMBuilt || status.MatchedVersion == "" {
		t.Fatalf("SBOM status %+v; want built and matched", status)
	}
}
