package testbed

import (
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/runtrust/runtrust/internal/sbomtest"
)

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
