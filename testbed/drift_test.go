package testbed

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/runtrust/runtrust/internal/records"
)

// driftInContainer: a real container runs (a) a program of its image, (b) one copied into it while it runs,
// (c) an image program overwritten in its writable layer and (d) a program from a memfd; the service reads the
// image's layers from the registry and judges each exec: in_image, added, modified, memory (docs/drift.md).
func driftInContainer(t *testing.T, s *Stack, ui *page) {
	pushed := PushDriftImage(t, s.Registry.Host, "shop/drifter:1")
	ref, digest := pushed.Ref, pushed.Digest
	ctd := StartContainerd(t)
	ctd.Pull(t, ref)
	d := s.RunDeployment(t, "shop", "drifter", ref, corev1.PullIfNotPresent, Running{
		ImageID: s.Registry.Ref("shop/drifter@" + digest),
		Start: func(pod *corev1.Pod) string {
			return ctd.Run(t, ref, PodCgroup(string(pod.UID)), "/bin/sleep", "600")
		},
	})
	s.waitImage(t, digest, "the drifter container known", func(i Image) bool { return len(i.Placements) == 1 })

	droppedSHA := Drift(t, ctd, d.ContainerID)

	type want struct{ path, sha, verdict, severity string }
	wants := []want{
		{"/bin/sh", pushed.ShSHA256, "in_image", records.SeverityNone},
		{"/usr/local/bin/memexec", "", "in_image", records.SeverityNone},
		{"/dropped", droppedSHA, "added", records.SeverityHigh},
		{"/bin/sleep", droppedSHA, "modified", records.SeverityCritical},
		{"/memfd:payload", "", "memory", records.SeverityHigh},
	}
	judged := func(i Image, w want) bool {
		return slices.ContainsFunc(i.Processes, func(p ExecInfo) bool {
			return p.Path == w.path && (w.sha == "" || Str(p.SHA256) == w.sha) && p.Drift != nil &&
				p.Drift.Verdict == w.verdict && p.Drift.Severity == w.severity
		})
	}
	start := time.Now()
	img := s.waitImage(t, digest, "each program judged against the image's layers", func(i Image) bool {
		for _, w := range wants {
			if !judged(i, w) {
				return false
			}
		}
		return true
	})
	t.Logf("judged %s after the execs; index of %d files; processes: %s", time.Since(start).Round(time.Second), img.Drift.Files, js(img.Processes))
	// The program the container started with is still the image's /bin/sleep, under its own SHA-256.
	if !slices.ContainsFunc(img.Processes, func(p ExecInfo) bool {
		return p.Path == "/bin/sleep" && Str(p.SHA256) != droppedSHA && p.Drift != nil && p.Drift.Verdict == "in_image"
	}) {
		t.Errorf("the container's own /bin/sleep is not in_image: %s", js(img.Processes))
	}
	if img.Drift.State != "built" || Str(img.DriftCounts.Severity) != records.SeverityCritical || img.DriftCounts.Findings != 3 {
		t.Errorf("drift %s / counts %s, want a built index and 3 findings, the worst critical", js(img.Drift), js(img.DriftCounts))
	}
	var findings struct {
		Items []struct {
			Path    string `json:"path"`
			Verdict string `json:"verdict"`
		} `json:"items"`
	}
	s.Get(t, "/api/v1/drift/findings?digest="+digest, &findings)
	var listed []string
	for _, f := range findings.Items {
		listed = append(listed, f.Verdict+" "+f.Path)
	}
	if slices.Sort(listed); !slices.Equal(listed, []string{"added /dropped", "memory /memfd:payload", "modified /bin/sleep"}) {
		t.Errorf("drift findings %q, want the added, memory and modified programs", listed)
	}
	// The page: each process row carries its verdict.
	ui.eventually(t, s.API+"/#/images/"+digest, "image", `['modified', 'added', 'memory', 'in_image'].every(v => !!document.querySelector('[data-drift="' + v + '"]'))`+
		` && document.querySelector('[data-drift="modified"]').closest('tr').textContent.includes('/bin/sleep')`)
	ui.screenshot(t, "drift-in-container")
}
