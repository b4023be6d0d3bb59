package testbed

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/internal/sbomtest"
)

// The demo (`make demo`, testbed/cmd/runtrust-demo) is the testbed's stack left running with one image for every
// finding runtrust makes, each made the way it happens in a cluster: a tag moved under a running pod, a digest
// the registry never held, an artifact deleted while it runs, a registry nobody approved, a shell in a real
// container, a vulnerable package the sensor saw load, programs the image never held run in its container.

// DemoImage is one image the demo runs and the finding it was made to show.
type DemoImage struct {
	Scenario string `json:"scenario"` // what happened to it, in a user's words
	Ref      string `json:"ref"`      // the reference its pod runs
	Digest   string `json:"digest"`   // the digest its container really runs
	Verdict  string `json:"verdict"`  // the integrity verdict it shows
	Finding  string `json:"finding"`  // what else it shows: a reason code, a process, a loaded vulnerability
	// ContainerID is the real container's id (64 hex), for the scenarios that run one.
	ContainerID string `json:"container_id,omitempty"`
}

// DemoOptions says where the demo keeps its files and what it can run on this machine.
type DemoOptions struct {
	// Dir holds the service's own PostgreSQL (Dir/pg) and the vulnerability mirror; the caller removes it.
	Dir string
	// HTTPAddr is where the UI and API listen (empty: a free loopback port).
	HTTPAddr string
	// Containers runs the node's sensor and real containerd containers (root, eBPF, containerd and runc); without
	// them the demo shows the registry findings alone.
	Containers bool
	// Progress is told each step as it starts (nil: quiet).
	Progress func(step string)
}

// Demo is the running demo: the stack and what it made.
type Demo struct {
	*Stack
	Images []DemoImage
}

// demoScenario makes one image's finding; it returns the image and the check that says the API shows it.
type demoScenario struct {
	name string
	run  func(t testing.TB, s *Stack) (DemoImage, func(Image) bool)
	// containers: needs the sensor and containerd.
	containers bool
}

var demoScenarios = []demoScenario{
	{name: "a verified image", run: demoVerified},
	{name: "green burrito: a new :latest pushed under a running IfNotPresent pod", run: demoStaleTag},
	{name: "a digest the registry never held", run: demoMismatch},
	{name: "an artifact deleted while its pod runs", run: demoMissing},
	{name: "an image from a registry nobody approved", run: demoUntrusted},
	{name: "a shell started inside a real container", run: demoShell, containers: true},
	{name: "a vulnerable package the sensor saw load", run: demoVulnerable, containers: true},
	{name: "a program dropped into a running container, one overwritten, one run from memory", run: demoDrift, containers: true},
}

// StartDemo starts the stack and makes every finding, waiting until the API shows each one. Everything it
// starts is stopped by t's cleanups.
func StartDemo(t testing.TB, opts DemoOptions) *Demo {
	t.Helper()
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	vulnDir := opts.Dir + "/osv"
	if err := os.MkdirAll(vulnDir, 0o755); err != nil {
		t.Fatal(err)
	}
	parts := "the runtime service (its own PostgreSQL in " + opts.Dir + "/pg), two OCI registries, etcd + kube-apiserver, the controller collector"
	if opts.Containers {
		parts += ", the node's sensor collector"
	}
	progress("starting " + parts)
	start := time.Now()
	s := StartStack(t, StackOptions{Kubernetes: true, Sensor: opts.Containers, HTTPAddr: opts.HTTPAddr,
		ServiceFlags: append(vulnServiceFlags(t, vulnDir), "-pg-data-dir", opts.Dir+"/pg", "-drift-interval", "5s")})
	s.EnsureNode(t, NodeName)
	progress(fmt.Sprintf("stack up in %s; UI at %s", time.Since(start).Round(time.Second), s.API))
	if opts.Containers {
		s.containerd = StartContainerd(t)
	}
	d := &Demo{Stack: s}
	for i, sc := range demoScenarios {
		if sc.containers && !opts.Containers {
			progress(fmt.Sprintf("[%d/%d] %s: left out (needs the sensor and containerd)", i+1, len(demoScenarios), sc.name))
			continue
		}
		progress(fmt.Sprintf("[%d/%d] %s", i+1, len(demoScenarios), sc.name))
		img, shows := sc.run(t, s)
		img.Scenario = sc.name
		s.waitImage(t, img.Digest, sc.name, shows)
		d.Images = append(d.Images, img)
	}
	return d
}

// runPushed pushes repo:tag to reg and runs it as Deployment ns/name, the pod reporting the pushed digest (as a
// kubelet that pulled it does). It returns the tag's reference and the digest.
func (s *Stack) runPushed(t testing.TB, reg *registrytest.Registry, ns, name, repo, tag string) (ref, digest string) {
	ref = reg.Ref(repo + ":" + tag)
	digest = reg.PushImage(t, repo+":"+tag)
	s.RunDeployment(t, ns, name, ref, corev1.PullIfNotPresent, Running{ImageID: reg.Ref(repo + "@" + digest)})
	return ref, digest
}

// verdictIs is a waitImage condition: the image's integrity verdict is v.
func verdictIs(v string) func(Image) bool { return func(i Image) bool { return Str(i.Verdict) == v } }

func demoVerified(t testing.TB, s *Stack) (DemoImage, func(Image) bool) {
	ref, digest := s.runPushed(t, s.Registry, "shop", "payments", "shop/payments", "1.4")
	return DemoImage{Ref: ref, Digest: digest, Verdict: records.IntegrityVerified}, verdictIs(records.IntegrityVerified)
}

func demoStaleTag(t testing.TB, s *Stack) (DemoImage, func(Image) bool) {
	ref, v1 := s.runPushed(t, s.Registry, "shop", "green-burrito", "shop/green-burrito", "latest")
	s.waitImage(t, v1, "green burrito verified before the push", verdictIs(records.IntegrityVerified))
	s.Registry.PushImage(t, "shop/green-burrito:latest")
	return DemoImage{Ref: ref, Digest: v1, Verdict: records.IntegrityStaleTag}, verdictIs(records.IntegrityStaleTag)
}

func demoMismatch(t testing.TB, s *Stack) (DemoImage, func(Image) bool) {
	s.Registry.PushImage(t, "shop/api:1.0")
	forged := "sha256:" + strings.Repeat("0bad", 16)
	s.RunDeployment(t, "shop", "api", s.Registry.Ref("shop/api:1.0"), corev1.PullIfNotPresent,
		Running{ImageID: s.Registry.Ref("shop/api@" + forged)})
	return DemoImage{Ref: s.Registry.Ref("shop/api:1.0"), Digest: forged, Verdict: records.IntegrityDigestMismatch},
		verdictIs(records.IntegrityDigestMismatch)
}

func demoMissing(t testing.TB, s *Stack) (DemoImage, func(Image) bool) {
	ref, digest := s.runPushed(t, s.Registry, "shop", "cart", "shop/cart", "2.1")
	s.waitImage(t, digest, "the cart verified before the deletion", verdictIs(records.IntegrityVerified))
	s.Registry.Delete(t, "shop/cart:2.1")
	s.Registry.Delete(t, "shop/cart@"+digest)
	return DemoImage{Ref: ref, Digest: digest, Verdict: records.IntegrityArtifactMissing}, verdictIs(records.IntegrityArtifactMissing)
}

func demoUntrusted(t testing.TB, s *Stack) (DemoImage, func(Image) bool) {
	ref, digest := s.runPushed(t, s.Untrusted, "batch", "miner", "tools/miner", "1")
	// The untrusted registry answers, so integrity is known: trust and integrity are separate findings.
	return DemoImage{Ref: ref, Digest: digest, Verdict: records.IntegrityVerified, Finding: records.ReasonUntrustedRegistry},
		func(i Image) bool { return HasReason(i.Reasons, records.ReasonUntrustedRegistry) }
}

func demoShell(t testing.TB, s *Stack) (DemoImage, func(Image) bool) {
	img := PushShellImage(t, s.Registry.Host, "shop/toolbox:1")
	s.containerd.Pull(t, img.Ref)
	d := s.RunDeployment(t, "shop", "toolbox", img.Ref, corev1.PullIfNotPresent, Running{
		ImageID: s.Registry.Ref("shop/toolbox@" + img.Digest),
		Start: func(pod *corev1.Pod) string {
			return s.containerd.Run(t, img.Ref, PodCgroup(string(pod.UID)), "/bin/sleep", "infinity")
		},
	})
	// The service attributes an exec to an image through the container's record, so it must have that first.
	s.waitImage(t, img.Digest, "the toolbox container known", func(i Image) bool { return len(i.Placements) == 1 })
	s.containerd.Exec(t, d.ContainerID, img.ShellPath, "-c", "echo a shell in the toolbox")
	return DemoImage{Ref: img.Ref, Digest: img.Digest, Verdict: records.IntegrityVerified, Finding: img.ShellPath,
			ContainerID: d.ContainerID},
		func(i Image) bool {
			return slices.ContainsFunc(i.Processes, func(p ExecInfo) bool { return p.Path == img.ShellPath })
		}
}

func demoVulnerable(t testing.TB, s *Stack) (DemoImage, func(Image) bool) {
	ref, digest := sbomtest.Push(t, s.Registry.Host, "shop/vuln-loaded:1", sbomtest.Image(t, vulnImage(t, "loaded")))
	s.containerd.Pull(t, ref)
	d := s.RunDeployment(t, "vuln", "loaded", ref, corev1.PullIfNotPresent, Running{
		ImageID: s.Registry.Ref("shop/vuln-loaded@" + digest),
		Start: func(pod *corev1.Pod) string {
			return s.containerd.Run(t, ref, PodCgroup(string(pod.UID)), "/bin/sleep", "infinity")
		},
	})
	s.waitImage(t, digest, "the vulnerable image's container known", func(i Image) bool { return len(i.Placements) == 1 })
	// An exec the sensor attributes to the container: coreutils' /bin/sleep, which the mirror says is vulnerable.
	s.containerd.Exec(t, d.ContainerID, "/bin/sleep", "0")
	WaitFor(t, 2*time.Minute, func() bool { return s.vulns(t, digest)["coreutils"].Reachability == "loaded" },
		func() string { return "the coreutils finding is not loaded: " + js(s.vulns(t, digest)) })
	return DemoImage{Ref: ref, Digest: digest, Verdict: records.IntegrityVerified, Finding: "DEBIAN-CVE-2026-20001 loaded",
			ContainerID: d.ContainerID},
		func(Image) bool { return true }
}

func demoDrift(t testing.TB, s *Stack) (DemoImage, func(Image) bool) {
	img := PushDriftImage(t, s.Registry.Host, "ops/agent:3")
	s.containerd.Pull(t, img.Ref)
	d := s.RunDeployment(t, "ops", "agent", img.Ref, corev1.PullIfNotPresent, Running{
		ImageID: s.Registry.Ref("ops/agent@" + img.Digest),
		Start: func(pod *corev1.Pod) string {
			return s.containerd.Run(t, img.Ref, PodCgroup(string(pod.UID)), "/bin/sleep", "infinity")
		},
	})
	s.waitImage(t, img.Digest, "the agent container known", func(i Image) bool { return len(i.Placements) == 1 })
	Drift(t, s.containerd, d.ContainerID)
	return DemoImage{Ref: img.Ref, Digest: img.Digest, Verdict: records.IntegrityVerified, Finding: DemoDriftFinding,
			ContainerID: d.ContainerID},
		func(i Image) bool {
			return Str(i.DriftCounts.Severity) == records.SeverityCritical && i.DriftCounts.Findings == 3
		}
}

// DemoDriftFinding is the drift scenario's finding: /bin/sleep overwritten (critical), /dropped added and
// /memfd:payload run from memory (high).
const DemoDriftFinding = "drift: modified /bin/sleep, added /dropped, memory /memfd:payload"

// HasReason says whether reasons holds one with the code (a reason is "code: detail").
func HasReason(reasons []string, code string) bool {
	return slices.ContainsFunc(reasons, func(r string) bool { return strings.HasPrefix(r, code) })
}
