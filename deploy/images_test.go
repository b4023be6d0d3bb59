package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runtrust/runtrust/internal/imagebuild"
	"github.com/runtrust/runtrust/internal/kubetest"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/internal/sbomtest"
	"github.com/runtrust/runtrust/testbed"
)

// BuildImages assembles the collector's and the runtime service's images from their Dockerfiles' runtime
// stages (internal/imagebuild) with the binaries built here (the distribution of `make dist`, and the runtime
// service built as Dockerfile.runtime-service builds it: static), pushes them to the plain-HTTP registry at
// host, and returns their references.
func BuildImages(t testing.TB, host string) (collector, service string) {
	t.Helper()
	root := repoRoot(t)
	serviceBin := filepath.Join(t.TempDir(), "runtime-service")
	if out, stderr, err := run(t, nil, []string{"CGO_ENABLED=0", "GOFLAGS=-buildvcs=false"}, "go", "-C", root, "build",
		"-trimpath", "-ldflags=-s", "-o", serviceBin, "./runtime-service/cmd/runtime-service"); err != nil {
		t.Fatalf("building the runtime service: %v\n%s%s", err, out, stderr)
	}
	built := map[string]map[string]string{
		"Dockerfile.collector":       {"/src/_build/otelcol-runtrust": testbed.CollectorBinary(t)},
		"Dockerfile.runtime-service": {"/out/runtime-service": serviceBin},
	}
	refs := map[string]string{}
	for name, repo := range map[string]string{"Dockerfile.collector": "runtrust/otelcol-runtrust:test", "Dockerfile.runtime-service": "runtrust/runtime-service:test"} {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "docker", name))
		if err != nil {
			t.Fatal(err)
		}
		stage, err := imagebuild.ParseRuntimeStage(string(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		img, err := imagebuild.Build(stage, root, built[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		refs[name], _ = sbomtest.Push(t, host, repo, img)
	}
	return refs["Dockerfile.collector"], refs["Dockerfile.runtime-service"]
}

// TestImagesRunOnTheNode: both images, assembled from the Dockerfiles without a docker daemon, are pulled and
// run by a real kubelet as the Dockerfiles' nonroot user: the collector lists its components, the runtime
// service prints its settings.
func TestImagesRunOnTheNode(t *testing.T) {
	reg := registrytest.Start(t)
	n := kubetest.StartNode(t, kubetest.NodeOptions{Registry: reg.Host})
	collector, service := BuildImages(t, reg.Host)
	client := n.Client(t)
	ctx := context.Background()
	cases := []struct {
		name, image string
		args        []string
		want        string
	}{
		{"collector", collector, []string{"components"}, "k8sinventory"},
		{"runtime-service", service, []string{"-h"}, "RUNTRUST_DATABASE_URL"},
	}
	for _, c := range cases {
		_, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: c.name},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: c.name, Image: c.image, Args: c.args}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cases {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			p, err := client.CoreV1().Pods("default").Get(ctx, c.name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				logs, err := client.CoreV1().Pods("default").GetLogs(c.name, &corev1.PodLogOptions{}).DoRaw(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(logs), c.want) {
					t.Errorf("%s (%s) printed no %q:\n%s", c.name, p.Status.Phase, c.want, logs)
				}
				if st := p.Status.ContainerStatuses; len(st) != 1 || st[0].State.Terminated == nil ||
					(c.name == "collector" && st[0].State.Terminated.ExitCode != 0) {
					t.Errorf("%s: container status %+v", c.name, st)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not finish in 2 min: %s %+v", c.name, p.Status.Phase, p.Status.ContainerStatuses)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}
