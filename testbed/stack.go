package testbed

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runtrust/runtrust/internal/kubetest"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
)

// StackOptions says which parts a Stack runs beyond the service.
type StackOptions struct {
	// DatabaseURL is the runtime service's Postgres (a pgtest database, say).
	DatabaseURL string
	// Kubernetes starts etcd + kube-apiserver and the controller collector watching it.
	Kubernetes bool
	// Sensor starts a sensor collector for node NodeName as well (needs Kubernetes, root and eBPF).
	Sensor bool
	// ControllerOverride is YAML merged over the shipped controller config (after the testbed's own override).
	ControllerOverride string
	// ServiceFlags are extra runtime-service flags.
	ServiceFlags []string
	// HTTPAddr is where the service's API and UI listen; empty: a free loopback port.
	HTTPAddr string
}

// The names the stack enrols and runs under.
const (
	ClusterName = "e2e"
	NodeName    = "node-1"
	stackJoin   = "testbed-join-key-0123456789abcdef"
)

// Stack is runtrust as a platform team installs it, on loopback: the runtime service on Postgres, a trusted OCI
// registry and an untrusted one, a kube-apiserver with etcd, and the built otelcol-runtrust as the controller
// (distributions/controller/config.yaml) and as a node's sensor (distributions/sensor/config.yaml), each enrolling
// with the one join key as its own collector (the controller as "controller", the sensor as its node name), as
// docs/install.md's Impact mode says. The load stack uses the documented alternative instead: one cluster token
// from `runtime-service enrol`, shared by its collectors (Token).
type Stack struct {
	API        string // the service's HTTP base, http://127.0.0.1:port
	GRPC       string // the service's gRPC address
	Service    *Process
	Registry   *registrytest.Registry // trusted: RUNTRUST_TRUSTED_REGISTRIES names it
	Untrusted  *registrytest.Registry // a real registry nobody approved
	Kube       *kubetest.Cluster
	Client     kubernetes.Interface
	ClusterUID string
	Token      string // set: the collectors use this shared token; empty: they enrol with the join key
	Controller *Process
	Sensor     *Process

	dir          string
	collectorBin string      // the collector binary; "" is CollectorBinary
	containerd   *Containerd // the demo's, for its real containers
}

// StartStack starts the parts opts asks for and returns when the collectors are healthy.
func StartStack(t testing.TB, opts StackOptions) *Stack {
	t.Helper()
	s := &Stack{dir: t.TempDir()}
	s.Registry = registrytest.Start(t)
	s.Untrusted = registrytest.Start(t)

	s.GRPC = FreeAddr(t)
	httpAddr := opts.HTTPAddr
	if httpAddr == "" {
		httpAddr = FreeAddr(t)
	}
	s.API = "http://" + httpAddr
	args := append([]string{"-database-url", opts.DatabaseURL, "-grpc-listen", s.GRPC, "-http-listen", httpAddr,
		"-join-key", stackJoin, "-log-level", "warn"}, opts.ServiceFlags...)
	s.Service = StartProcess(t, "runtime-service", ServiceBinary(t), nil, args...)
	WaitHTTP(t, s.API+"/readyz", s.Service)

	if !opts.Kubernetes {
		return s
	}
	s.Kube = kubetest.Start(t)
	s.Client = s.Kube.Client(t)
	ctx := context.Background()
	ks, err := s.Client.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.ClusterUID = string(ks.UID)

	s.Controller = s.startCollector(t, "controller", map[string]string{
		"RUNTRUST_CLUSTER_UID":        s.ClusterUID,
		"RUNTRUST_TRUSTED_REGISTRIES": fmt.Sprintf("[%q]", s.Registry.Host),
		// Every 2 s the whole inventory passes the processors again: the scenarios wait for a tag that moved or
		// vanished to show, and in a real cluster that is the snapshot interval too (1 h by default).
		"RUNTRUST_SNAPSHOT_INTERVAL": "2s",
		"RUNTRUST_MODE":              "impact",
	}, `
receivers:
  k8sinventory:
    # The testbed runs the collector as a process beside the apiserver, not in a pod: the admin kubeconfig
    # stands in for the service account (deploy/e2e_test.go runs it with the chart's service account instead).
    auth_type: kubeConfig
processors:
  imageintegrity:
    # A tag's answer is kept 5 min by default; the scenarios move tags and wait for the verdict to follow.
    cache:
      ttl: 1s
      negative_ttl: 1s
  batch:
    timeout: 200ms
`+opts.ControllerOverride)

	if opts.Sensor {
		EnsureKubepods(t)
		s.Sensor = s.startCollector(t, "sensor", map[string]string{
			"K8S_NODE_NAME": NodeName,
			// The host's cgroup tree where the sensor finds it; in the DaemonSet it is mounted at /host/sys/fs/cgroup.
			"RUNTRUST_HOST_CGROUP": "/sys/fs/cgroup",
		}, `
receivers:
  runtimesensor:
    # One health record every 2 s (1 min by default), so "stale" (3 missed intervals) shows within seconds.
    health_interval: 2s
    kubernetes:
      auth_type: kubeConfig
processors:
  batch:
    timeout: 200ms
`)
	}
	return s
}

// enrol runs `runtime-service enrol`, docs/install.md's shared-token alternative, and returns the token.
func (s *Stack) enrol(t testing.TB) string {
	t.Helper()
	tokenFile := filepath.Join(s.dir, "cluster.token")
	p := StartProcess(t, "runtime-service enrol", ServiceBinary(t), nil, "enrol", "-server", s.GRPC,
		"-join-key", stackJoin, "-cluster-uid", s.ClusterUID, "-cluster-name", ClusterName, "-token-file", tokenFile)
	WaitFor(t, time.Minute, func() bool { done, _ := p.Exited(); return done }, p.Output)
	if _, err := p.Exited(); err != nil {
		t.Fatalf("runtime-service enrol: %v\n%s", err, p.Output())
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// startCollector runs the built otelcol-runtrust with distributions/<mode>/config.yaml unchanged, the env the
// Helm chart would set, and override merged over it (the collector merges --config files in order).
func (s *Stack) startCollector(t testing.TB, mode string, env map[string]string, override string) *Process {
	t.Helper()
	health := FreeAddr(t)
	base := map[string]string{
		"RUNTRUST_CLUSTER_NAME":     ClusterName,
		"RUNTRUST_SERVICE_ENDPOINT": s.GRPC,
		"RUNTRUST_SERVICE_INSECURE": "true",
		"RUNTRUST_QUEUE_DIR":        filepath.Join(s.dir, mode+"-queue"),
		"RUNTRUST_HEALTH_ENDPOINT":  health,
		"RUNTRUST_CLUSTER_UID":      s.ClusterUID,
	}
	if s.Token != "" {
		base["RUNTRUST_CLUSTER_TOKEN"] = s.Token
	} else {
		base["RUNTRUST_JOIN_KEY"] = stackJoin
	}
	if s.Kube != nil {
		base["KUBECONFIG"] = s.Kube.Kubeconfig
	}
	for k, v := range env {
		base[k] = v
	}
	environ := os.Environ()
	for k, v := range base {
		environ = append(environ, k+"="+v)
	}
	overridePath := filepath.Join(s.dir, mode+"-override.yaml")
	writeFile(t, overridePath, override)
	// The collector's own metrics would take :8888, which other collectors on this machine may hold.
	quietPath := filepath.Join(s.dir, mode+"-quiet.yaml")
	writeFile(t, quietPath, "service:\n  telemetry:\n    metrics:\n      level: none\n")
	shipped := filepath.Join(repoRoot(t), "distributions", mode, "config.yaml")
	bin := s.collectorBin
	if bin == "" {
		bin = CollectorBinary(t)
	}
	p := StartProcess(t, mode, bin, environ, "--config="+shipped, "--config="+overridePath, "--config="+quietPath)
	WaitHTTP(t, "http://"+health+"/", p)
	return p
}

// Get decodes GET API+path into into.
func (s *Stack) Get(t testing.TB, path string, into any) { GetJSON(t, s.API+path, into) }

// Image is /api/v1/images/{digest}, the parts the scenarios check.
type Image struct {
	Digest     string      `json:"digest"`
	Severity   *string     `json:"severity"`
	Verdict    *string     `json:"verdict"`
	Reasons    []string    `json:"reasons"`
	Refs       []string    `json:"refs"`
	Placements []Placement `json:"placements"`
	Processes  []ExecInfo  `json:"processes"`
	// DriftCounts (lists and detail) count its drift findings with a severity; Drift (detail) is its index.
	DriftCounts struct {
		Findings int     `json:"findings"`
		Severity *string `json:"severity"`
	} `json:"drift_counts"`
	Drift struct {
		State string `json:"state"`
		Files int    `json:"files"`
	} `json:"drift"`
	Timeline    []VerdictChange `json:"timeline"`
	Remediation []struct {
		PullPolicies []string `json:"pull_policies"`
		PinnedRef    *string  `json:"pinned_ref"`
	} `json:"remediation"`
}

// ExecInfo is an executable the image's containers ran.
type ExecInfo struct {
	Path       string   `json:"path"`
	SHA256     *string  `json:"sha256"`
	Count      int64    `json:"count"`
	Containers []string `json:"containers"`
	Drift      *struct {
		Verdict   string  `json:"verdict"`
		Severity  string  `json:"severity"`
		AllowedBy *string `json:"allowed_by"`
	} `json:"drift"`
}

// VerdictChange is an entry of an image's timeline.
type VerdictChange struct {
	From *struct {
		Verdict *string `json:"verdict"`
	} `json:"from"`
	To struct {
		Verdict *string `json:"verdict"`
	} `json:"to"`
}

// Placement is one container running an image.
type Placement struct {
	Namespace       string   `json:"namespace"`
	Pod             string   `json:"pod"`
	Container       string   `json:"container"`
	Node            string   `json:"node"`
	ExpectedDigest  *string  `json:"expected_digest"`
	Verdict         *string  `json:"verdict"`
	Severity        *string  `json:"severity"`
	Reasons         []string `json:"reasons"`
	PullPolicy      *string  `json:"pull_policy"`
	RegistryTrusted *bool    `json:"registry_trusted"`
	Workload        *struct {
		Kind, Name string
	} `json:"workload"`
}

// Images lists the images running now (every page).
func (s *Stack) Images(t testing.TB) []Image {
	t.Helper()
	var all []Image
	for offset := 0; ; {
		var page struct {
			Items      []Image `json:"items"`
			NextOffset *int    `json:"next_offset"`
		}
		s.Get(t, fmt.Sprintf("/api/v1/images?limit=500&offset=%d", offset), &page)
		all = append(all, page.Items...)
		if page.NextOffset == nil {
			return all
		}
		offset = *page.NextOffset
	}
}

// ImageDetail is /api/v1/images/{digest}; ok is false on 404 (the service never saw the digest).
func (s *Stack) ImageDetail(t testing.TB, digest string) (Image, bool) {
	t.Helper()
	var img Image
	if code := GetStatus(t, s.API+"/api/v1/images/"+url.PathEscape(digest), &img); code == 404 {
		return img, false
	} else if code != 200 {
		t.Fatalf("GET image %s: HTTP %d", digest, code)
	}
	return img, true
}

// Str reads an optional string from the API.
func Str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// waitImage polls the image's detail until ok holds, and fails with what the API and the controller said.
func (s *Stack) waitImage(t testing.TB, digest, what string, ok func(Image) bool) Image {
	t.Helper()
	var img Image
	var found bool
	WaitFor(t, 90*time.Second, func() bool {
		img, found = s.ImageDetail(t, digest)
		return found && ok(img)
	}, func() string {
		why := fmt.Sprintf("%s: image %s (found %v):\n%s\ncontroller:\n%s\nservice:\n%s", what, digest, found, js(img),
			tail(s.Controller.Output()), tail(s.Service.Output()))
		if s.Sensor != nil {
			why += "\nsensor:\n" + tail(s.Sensor.Output())
		}
		return why + "\nservice metrics:\n" + s.metrics(t, "runtrust_ingest_")
	})
	return img
}

// metrics returns the service's Prometheus lines that start with prefix.
func (s *Stack) metrics(t testing.TB, prefix string) string {
	resp, err := http.Get(s.API + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
