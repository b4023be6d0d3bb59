package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/runtrust/runtrust/internal/sbomtest"
)

// The testbed's vulnerability database: an OSV mirror the scenarios write (docs/vulnerabilities.md), and how
// the service is told to use it. The window is short so a container watched by the node's sensor becomes
// not_loaded within the test.
const (
	vulnWindow   = 20 * time.Second
	vulnCritical = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" // 9.8
)

// vulnServiceFlags writes the OSV mirror into dir and returns the service flags that scan against it.
func vulnServiceFlags(t testing.TB, dir string) []string {
	t.Helper()
	for _, a := range []struct{ id, pkg, fixed string }{
		{"DEBIAN-CVE-2026-20001", "coreutils", "9.1-1+deb12u1"},      // /bin/sleep: executed in the real container
		{"DEBIAN-CVE-2026-20002", "zlib", "1:1.2.13.dfsg-1+deb12u1"}, // a library nothing opens
	} {
		entry := fmt.Sprintf(`{"schema_version": "1.6.0", "id": %q, "aliases": ["CVE-%s"], "modified": "2026-11-01T00:00:00Z",
			"summary": "testbed flaw in %s", "severity": [{"type": "CVSS_V3", "score": %q}],
			"affected": [{"package": {"ecosystem": "Debian:12", "name": %q},
				"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": %q}]}]}]}`,
			a.id, a.id[len(a.id)-9:], a.pkg, vulnCritical, a.pkg, a.fixed)
		if err := os.WriteFile(filepath.Join(dir, a.pkg+".json"), []byte(entry), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"-vulnerability-db", "osv:" + dir, "-reachability-window", vulnWindow.String(), "-scan-interval", "1s"}
}

// vulnImage is a Debian 12 image whose dpkg database owns the files a container really runs: dash (/bin/sh),
// coreutils (/bin/sleep), libc6 (the C library and loader, from this machine), and zlib1g (a library nothing
// opens). variant makes two images of the same packages with different digests.
func vulnImage(t testing.TB, variant string) sbomtest.Spec {
	t.Helper()
	host := func(p string) string {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatalf("the vulnerable image needs %s from this machine: %v", p, err)
		}
		return real
	}
	return sbomtest.Spec{
		OSID: "debian", OSVersion: "12", Cmd: []string{"/bin/sleep", "600"},
		Files: []sbomtest.File{
			{Path: "/bin/sh", HostPath: host("/bin/sh")},
			{Path: "/bin/sleep", HostPath: host("/bin/sleep")},
			{Path: "/lib/x86_64-linux-gnu/libc.so.6", HostPath: host("/lib/x86_64-linux-gnu/libc.so.6")},
			{Path: "/lib64/ld-linux-x86-64.so.2", HostPath: host("/lib64/ld-linux-x86-64.so.2")},
			{Path: "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", Content: []byte("zlib " + variant), Mode: 0o644},
		},
		Deb: []sbomtest.Package{
			{Name: "dash", Version: "0.5.12-2", Files: []string{"/bin/sh"}},
			{Name: "coreutils", Version: "9.1-1", Files: []string{"/bin/sleep"}},
			{Name: "libc6", Version: "2.36-9", Source: "glibc", Files: []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}},
			{Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Source: "zlib", Files: []string{"/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"}},
		},
	}
}

// Vuln is a finding as /api/v1/vulnerabilities answers it (the fields the scenario reads).
type Vuln struct {
	ID           string  `json:"id"`
	Digest       string  `json:"digest"`
	Package      string  `json:"package"`
	Severity     string  `json:"severity"`
	Fixed        *string `json:"fixed_version"`
	Reachability string  `json:"reachability"`
	Evidence     *struct {
		Kind, Path, Process string
		ContainerID         string `json:"container_id"`
	} `json:"evidence"`
}

func (s *Stack) vulns(t testing.TB, digest string) map[string]Vuln {
	var page struct {
		Items []Vuln `json:"items"`
	}
	s.Get(t, "/api/v1/vulnerabilities?digest="+digest+"&limit=500", &page)
	out := map[string]Vuln{}
	for _, v := range page.Items {
		out[v.Package] = v
	}
	return out
}

// vulnerableAndLoaded: two images of the same Debian packages, each running in one pod on the sensor's node:
// one in a real container that executes /bin/sleep (coreutils), the other a pod whose container the sensor sees
// do nothing. The coreutils CVE is loaded in the first with the exec as evidence, not_loaded in the second once
// the window has passed, the zlib CVE not_loaded in both; and the first ranks above the second although both
// are verified and equally spread.
func vulnerableAndLoaded(t *testing.T, s *Stack, ui *page) {
	ctd := StartContainerd(t)
	loadedRef, loadedDigest := sbomtest.Push(t, s.Registry.Host, "shop/vuln-loaded:1", sbomtest.Image(t, vulnImage(t, "loaded")))
	idleRef, idleDigest := sbomtest.Push(t, s.Registry.Host, "shop/vuln-idle:1", sbomtest.Image(t, vulnImage(t, "idle")))
	ctd.Pull(t, loadedRef)
	d := s.RunDeployment(t, "vuln", "loaded", loadedRef, corev1.PullIfNotPresent, Running{
		ImageID: s.Registry.Ref("shop/vuln-loaded@" + loadedDigest),
		Start: func(pod *corev1.Pod) string {
			return ctd.Run(t, loadedRef, PodCgroup(string(pod.UID)), "/bin/sleep", "600")
		},
	})
	s.RunDeployment(t, "vuln", "idle", idleRef, corev1.PullIfNotPresent, Running{ImageID: s.Registry.Ref("shop/vuln-idle@" + idleDigest)})
	s.waitImage(t, loadedDigest, "the loaded image's container known", func(i Image) bool { return len(i.Placements) == 1 })
	// An exec the sensor attributes to the container (its record is in by now): coreutils' /bin/sleep.
	ctd.Exec(t, d.ContainerID, "/bin/sleep", "0")

	var loaded, idle map[string]Vuln
	WaitFor(t, 90*time.Second+vulnWindow, func() bool {
		loaded, idle = s.vulns(t, loadedDigest), s.vulns(t, idleDigest)
		return loaded["coreutils"].Reachability == "loaded" && loaded["zlib1g"].Reachability == "not_loaded" &&
			idle["coreutils"].Reachability == "not_loaded" && idle["zlib1g"].Reachability == "not_loaded"
	}, func() string {
		return fmt.Sprintf("loaded image %s: %s\nidle image %s: %s\nservice:\n%s\nsensor:\n%s", loadedDigest, js(loaded),
			idleDigest, js(idle), tail(s.Service.Output()), tail(s.Sensor.Output()))
	})
	t.Logf("findings of the loaded image: %s", js(loaded))
	ev := loaded["coreutils"].Evidence
	if ev == nil || ev.Kind != "exec" || ev.Path != "/bin/sleep" || ev.ContainerID != d.ContainerID {
		t.Errorf("coreutils evidence %s; want the exec of /bin/sleep in container %s", js(ev), d.ContainerID)
	}
	if f := loaded["coreutils"]; f.Severity != "critical" || Str(f.Fixed) != "9.1-1+deb12u1" {
		t.Errorf("coreutils finding %s", js(f))
	}
	// The ranking: the image whose critical CVE is loaded comes before its otherwise equal twin.
	order := slices.IndexFunc(s.Images(t), func(i Image) bool { return i.Digest == loadedDigest })
	twin := slices.IndexFunc(s.Images(t), func(i Image) bool { return i.Digest == idleDigest })
	if order < 0 || twin < 0 || order > twin {
		t.Errorf("ranking: loaded image at %d, its idle twin at %d; want the loaded one first", order, twin)
	}
	// The page: the loaded image's list cell counts its loaded finding, and the Vulnerabilities view's last funnel
	// step lists the coreutils CVE as loaded in this image.
	ui.eventually(t, s.API+"/#/images", "images", fmt.Sprintf(
		`document.querySelector('tr[data-digest=%q] [data-vuln-loaded]')?.dataset.vulnLoaded === '1'`, loadedDigest))
	ui.eventually(t, s.API+"/#/vulnerabilities?severity=critical,high&fix=true&reachability=loaded", "vulnerabilities", fmt.Sprintf(
		`!!document.querySelector('tr[data-id="DEBIAN-CVE-2026-20001"][data-digest=%q][data-reachability="loaded"]')`, loadedDigest))
	ui.screenshot(t, "vulnerable-and-loaded")
}
