package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

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
