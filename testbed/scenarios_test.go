package testbed

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestScenarios runs runtrust end to end on real parts (docs/testbed.md): Postgres, the runtime service binary,
// two OCI registries, etcd + kube-apiserver, the built collector as controller and as a node's sensor, a real
// containerd + runc container, and the UI in Chromium. Each scenario ends by checking what the API and the UI
// show. They share one stack, as one cluster's story would; each uses its own images and namespace.
func TestScenarios(t *testing.T) {
	start := time.Now()
	s := StartStack(t, StackOptions{DatabaseURL: pgtest.DB(t), Kubernetes: true, Sensor: true,
		ServiceFlags: append(vulnServiceFlags(t, t.TempDir()), "-drift-interval", "1s")})
	s.EnsureNode(t, NodeName)
	ui := startBrowser(t)
	t.Logf("stack up in %s", time.Since(start).Round(time.Second))

	t.Run("green burrito: latest moves under IfNotPresent, then the rollout pins it", func(t *testing.T) {
		greenBurrito(t, s, ui)
	})
	t.Run("image from an untrusted registry", func(t *testing.T) {
		digest := s.Untrusted.PushImage(t, "tools/miner:1")
		s.RunDeployment(t, "batch", "miner", s.Untrusted.Ref("tools/miner:1"), corev1.PullIfNotPresent,
			Running{ImageID: s.Untrusted.Ref("tools/miner@" + digest)})
		img := s.waitImage(t, digest, "severity high for the untrusted registry", func(i Image) bool {
			return Str(i.Severity) == records.SeverityHigh && HasReason(i.Reasons, records.ReasonUntrustedRegistry)
		})
		// The registry answered, so integrity is still known: trust and integrity are separate findings.
		if v := Str(img.Verdict); v != records.IntegrityVerified {
			t.Errorf("verdict %q, want %s: the untrusted registry holds exactly this digest", v, records.IntegrityVerified)
		}
		if len(img.Placements) != 1 || img.Placements[0].RegistryTrusted == nil || *img.Placements[0].RegistryTrusted {
			t.Errorf("placements %s, want one with registry_trusted false", js(img.Placements))
		}
		ui.eventually(t, s.API+"/#/images", "images",
			fmt.Sprintf(`!!document.querySelector('tr[data-digest=%q] [data-verdict="untrusted"]')`, digest))
	})
	// This scenario found a product bug (the running digest without its repository was taken for a bare image
	// id): docs/testbed.md, "A product bug the testbed found, and fixed".
	t.Run("a digest the registry never held", func(t *testing.T) {
		s.Registry.PushImage(t, "shop/api:1.0")
		forged := "sha256:" + strings.Repeat("0bad", 16)
		s.RunDeployment(t, "shop", "api", s.Registry.Ref("shop/api:1.0"), corev1.PullIfNotPresent,
			Running{ImageID: s.Registry.Ref("shop/api@" + forged)})
		s.waitImage(t, forged, "digest_mismatch, critical", func(i Image) bool {
			return Str(i.Verdict) == records.IntegrityDigestMismatch && Str(i.Severity) == records.SeverityCritical
		})
		ui.eventually(t, s.API+"/#/images", "images",
			fmt.Sprintf(`document.querySelector('tr[data-digest=%q]')?.dataset.severity === 'critical'`, forged))
	})
	t.Run("an artifact deleted while it runs", func(t *testing.T) {
		digest := s.Registry.PushImage(t, "shop/cart:2.1")
		s.RunDeployment(t, "shop", "cart", s.Registry.Ref("shop/cart:2.1"), corev1.PullIfNotPresent,
			Running{ImageID: s.Registry.Ref("shop/cart@" + digest)})
		s.waitImage(t, digest, "verified before the deletion", func(i Image) bool { return Str(i.Verdict) == records.IntegrityVerified })
		s.Registry.Delete(t, "shop/cart:2.1")
		s.Registry.Delete(t, "shop/cart@"+digest)
		img := s.waitImage(t, digest, "artifact_missing, high", func(i Image) bool {
			return Str(i.Verdict) == records.IntegrityArtifactMissing && Str(i.Severity) == records.SeverityHigh
		})
		if !timelineHas(img, records.IntegrityVerified, records.IntegrityArtifactMissing) {
			t.Errorf("timeline %s lacks verified → artifact_missing", js(img.Timeline))
		}
		ui.eventually(t, s.API+"/#/images", "images",
			fmt.Sprintf(`document.querySelector('tr[data-digest=%q]')?.dataset.verdict === 'artifact_missing'`, digest))
	})
	t.Run("a shell started inside a real container", func(t *testing.T) {
		shellInContainer(t, s, ui)
	})
	t.Run("drift in a real container: a program copied in, one overwritten, one from memory", func(t *testing.T) {
		driftInContainer(t, s, ui)
	})
	// Last: it stops the sensor.
	t.Run("a vulnerable package loaded in a real container ranks its image first", func(t *testing.T) {
		vulnerableAndLoaded(t, s, ui)
	})
	t.Run("a node's sensor stops", func(t *testing.T) {
		sensorStops(t, s, ui)
	})
	t.Logf("scenarios done in %s", time.Since(start).Round(time.Second))
}

func greenBurrito(t *testing.T, s *Stack, ui *page) {
	repo := "shop/green-burrito"
	v1 := s.Registry.PushImage(t, repo+":latest")
	d := s.RunDeployment(t, "shop", "green-burrito", s.Registry.Ref(repo+":latest"), corev1.PullIfNotPresent,
		Running{ImageID: s.Registry.Ref(repo + "@" + v1)})
	img := s.waitImage(t, v1, "verified", func(i Image) bool { return Str(i.Verdict) == records.IntegrityVerified })
	if len(img.Placements) != 1 || img.Placements[0].Workload == nil || img.Placements[0].Workload.Name != "green-burrito" ||
		img.Placements[0].Workload.Kind != "Deployment" || img.Placements[0].Node != NodeName {
		t.Fatalf("placements %s, want the green-burrito Deployment's pod on %s", js(img.Placements), NodeName)
	}

	// A new :latest is pushed; the node keeps running what it pulled (IfNotPresent).
	v2 := s.Registry.PushImage(t, repo+":latest")
	img = s.waitImage(t, v1, "stale_tag after the push", func(i Image) bool { return Str(i.Verdict) == records.IntegrityStaleTag })
	if sev := Str(img.Severity); sev != records.SeverityMedium {
		t.Errorf("stale tag severity %q, want %s", sev, records.SeverityMedium)
	}
	p := img.Placements[0]
	if Str(p.ExpectedDigest) != v2 || Str(p.PullPolicy) != string(corev1.PullIfNotPresent) {
		t.Errorf("placement %s, want expected digest %s (the tag now) and pull policy IfNotPresent", js(p), v2)
	}
	if len(img.Remediation) != 1 || !slices.Contains(img.Remediation[0].PullPolicies, "IfNotPresent") ||
		Str(img.Remediation[0].PinnedRef) != s.Registry.Ref(repo+"@"+v2) {
		t.Fatalf("remediation %s, want pull policy IfNotPresent and the pinned reference %s", js(img.Remediation), s.Registry.Ref(repo+"@"+v2))
	}
	if !timelineHas(img, records.IntegrityVerified, records.IntegrityStaleTag) {
		t.Errorf("timeline %s lacks verified → stale_tag", js(img.Timeline))
	}
	// The UI's evidence: both digests side by side and the pull-policy explanation.
	url := s.API + "/#/images/" + v1
	ui.eventually(t, url, "image", fmt.Sprintf(`document.querySelector('[data-evidence=expected]')?.textContent === %q`, v2))
	ui.screenshot(t, "green-burrito-stale-tag")
	if got := eval[string](t, ui, `document.querySelector('[data-evidence=running]').textContent`); got != v1 {
		t.Errorf("UI running digest %q, want %s", got, v1)
	}
	if got := eval[string](t, ui, `document.querySelector('[data-pull-policy]').dataset.pullPolicy`); got != "IfNotPresent" {
		t.Errorf("UI pull policy %q", got)
	}
	if got := eval[string](t, ui, `document.querySelector('.meaning').textContent`); !strings.Contains(got, "IfNotPresent") {
		t.Errorf("UI does not explain the IfNotPresent case: %q", got)
	}

	// The team follows the remediation: the Deployment runs the pinned reference the API suggested.
	s.RollOut(t, d, *img.Remediation[0].PinnedRef, Running{ImageID: s.Registry.Ref(repo + "@" + v2)})
	s.waitImage(t, v2, "the new digest verified", func(i Image) bool {
		return Str(i.Verdict) == records.IntegrityVerified && Str(i.Severity) == records.SeverityNone
	})
	WaitFor(t, 90*time.Second, func() bool {
		return !slices.ContainsFunc(s.Images(t), func(i Image) bool { return i.Digest == v1 })
	}, func() string { return "the stale digest is still listed as running:\n" + js(s.Images(t)) })
	ui.eventually(t, s.API+"/#/images", "images", fmt.Sprintf(
		`document.querySelector('tr[data-digest=%q]')?.dataset.verdict === 'verified' && !document.querySelector('tr[data-digest=%q]')`, v2, v1))
	ui.screenshot(t, "green-burrito-verified")
}

func shellInContainer(t *testing.T, s *Stack, ui *page) {
	ctd := StartContainerd(t)
	img := PushShellImage(t, s.Registry.Host, "shop/toolbox:1")
	ctd.Pull(t, img.Ref)
	d := s.RunDeployment(t, "shop", "toolbox", img.Ref, corev1.PullIfNotPresent, Running{
		ImageID: s.Registry.Ref("shop/toolbox@" + img.Digest),
		Start: func(pod *corev1.Pod) string {
			return ctd.Run(t, img.Ref, PodCgroup(string(pod.UID)), "/bin/sleep", "600")
		},
	})
	id := d.ContainerID
	// The service attributes an exec to an image through the container's record, so it must have that first.
	s.waitImage(t, img.Digest, "the toolbox container known", func(i Image) bool {
		return Str(i.Verdict) == records.IntegrityVerified && len(i.Placements) == 1
	})
	if out := ctd.Exec(t, id, img.ShellPath, "-c", "echo in-container"); !strings.Contains(out, "in-container") {
		t.Fatalf("the shell in the container said %q", out)
	}
	got := s.waitImage(t, img.Digest, img.ShellPath+" with its SHA-256 under the image", func(i Image) bool {
		return slices.ContainsFunc(i.Processes, func(p ExecInfo) bool {
			return p.Path == img.ShellPath && Str(p.SHA256) == img.ShSHA256 && slices.Contains(p.Containers, id)
		})
	})
	t.Logf("processes under %s: %s", img.Digest, js(got.Processes))
	// The page shows the path, and the SHA-256 shortened with the whole of it in the title.
	ui.eventually(t, s.API+"/#/images/"+img.Digest, "image", fmt.Sprintf(
		`[...document.querySelectorAll('#processes + table tbody tr')].some(r => r.textContent.includes(%q) && r.querySelector('code[title]')?.title === %q)`,
		img.ShellPath, img.ShSHA256))
	ui.screenshot(t, "shell-in-container")
}

func sensorStops(t *testing.T, s *Stack, ui *page) {
	node := func() *Node {
		var c struct {
			NodeList []Node `json:"node_list"`
		}
		s.Get(t, "/api/v1/clusters/"+ClusterName, &c)
		for i := range c.NodeList {
			if c.NodeList[i].Name == NodeName {
				return &c.NodeList[i]
			}
		}
		return nil
	}
	WaitFor(t, 60*time.Second, func() bool { n := node(); return n != nil && n.Sensor != nil && !n.Sensor.Stale },
		func() string {
			return "node's sensor not reporting: " + js(node()) + "\nsensor:\n" + tail(s.Sensor.Output())
		})
	// It says which hook its open program runs on: on this machine's kernel, the tracepoints (it refuses the
	// trampolines); the UI shows it beside the programs.
	if n := node(); n.Sensor.OpenHook == nil || !slices.Contains([]string{"lsm", "fexit", "tracepoint"}, *n.Sensor.OpenHook) {
		t.Errorf("the node's sensor names no open hook: %s", js(n))
	}
	ui.eventually(t, s.API+"/#/clusters", "clusters", fmt.Sprintf(
		`!!document.querySelector('tr[data-node=%q]') && !document.querySelector('tr[data-node=%q]').classList.contains('stale')`+
			` && !!document.querySelector('tr[data-node=%q] [data-open-hook]')`, NodeName, NodeName, NodeName))

	// Each collector enrolled with the one join key as its own collector, and both are live.
	var cl struct {
		Collectors []struct {
			ID   string  `json:"id"`
			Mode *string `json:"mode"`
			Live bool    `json:"live"`
		} `json:"collectors"`
	}
	s.Get(t, "/api/v1/clusters/"+ClusterName, &cl)
	var ids []string
	for _, c := range cl.Collectors {
		ids = append(ids, c.ID)
		if !c.Live {
			t.Errorf("collector %s is not live: %s", c.ID, js(cl.Collectors))
		}
	}
	if slices.Sort(ids); !slices.Equal(ids, []string{"controller", NodeName}) {
		t.Errorf("collectors %v, want controller and %s, each enrolled with the join key", ids, NodeName)
	}

	if err := s.Sensor.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	WaitFor(t, 90*time.Second, func() bool { n := node(); return n != nil && n.Sensor != nil && n.Sensor.Stale },
		func() string { return "the stopped sensor is not stale: " + js(node()) })
	t.Logf("stale %s after the sensor stopped", time.Since(stopped).Round(time.Second))
	var c struct {
		Sensors struct{ Stale int } `json:"sensors"`
	}
	s.Get(t, "/api/v1/clusters/"+ClusterName, &c)
	if c.Sensors.Stale != 1 {
		t.Errorf("cluster summary: %d stale sensors, want 1", c.Sensors.Stale)
	}
	sel := fmt.Sprintf(`tr[data-node=%q]`, NodeName)
	ui.eventually(t, s.API+"/#/clusters", "clusters", fmt.Sprintf(
		`document.querySelector(%q)?.classList.contains('stale') && document.querySelector(%q).textContent.includes('stale')`, sel, sel))
	ui.screenshot(t, "sensor-stale")
}

// Node is a node of /api/v1/clusters/{name}.
type Node struct {
	Name   string `json:"name"`
	Sensor *struct {
		Stale      bool    `json:"stale"`
		EventsSeen int     `json:"events_seen"`
		OpenHook   *string `json:"open_hook"`
	} `json:"sensor"`
}

func timelineHas(img Image, from, to string) bool {
	return slices.ContainsFunc(img.Timeline, func(c VerdictChange) bool {
		return c.From != nil && Str(c.From.Verdict) == from && Str(c.To.Verdict) == to
	})
}
