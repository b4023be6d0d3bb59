package kubetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/runtrust/runtrust/internal/loopback"
	"github.com/runtrust/runtrust/internal/sbomtest"
)

// EnvNodeDir names the directory holding kubelet, kube-scheduler and kube-controller-manager (`make kube-node`).
const EnvNodeDir = "RUNTRUST_KUBE_NODE_DIR"

// SandboxRepo is the repository and tag the node's sandbox (pause) image is pushed as.
const SandboxRepo = "kubetest/pause:3.10"

// PodSubnet is the node's pod network (CNI bridge with host-local addresses).
const PodSubnet = "10.244.0.0/24"

// NodeDir is where the node's binaries are: $RUNTRUST_KUBE_NODE_DIR, or the Makefile's cache path.
func NodeDir() string {
	if p := os.Getenv(EnvNodeDir); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "runtrust", "kube-node-"+Version)
}

// Node is a single-node cluster built from parts on this machine: the control plane of Start, with
// kube-controller-manager and kube-scheduler, and one node: containerd with its CRI plugin (Debian's
// containerd and runc, CNI from Debian's containernetworking-plugins) and a kubelet registered as Name. Pods
// are really scheduled, their sandboxes and containers really run.
type Node struct {
	*Cluster
	// Name is the node's name.
	Name string
	// IP is the node's address (the machine's): where its pods reach the host, and the apiserver listens too.
	IP string
	// ContainerdSocket is the CRI and containerd API socket.
	ContainerdSocket string
	// KubeletDir is the kubelet's root directory.
	KubeletDir string

	nodeDir  string // containerd's and the CNI's files: a short path (sockets)
	proxyBin string
}

// NodeOptions configures StartNode.
type NodeOptions struct {
	// Registry is the host:port of a plain-HTTP registry on loopback: the sandbox image is pushed there, and
	// containerd pulls from it over HTTP.
	Registry string
	// Name is the node's name; "" is "kubetest-node".
	Name string
}

// StartNode starts the control plane, the controllers, containerd and the kubelet, and returns once the node is
// Ready and the default service account exists; everything stops when the test ends. A missing part fails
// the test, saying how to get it.
func StartNode(t testing.TB, opts NodeOptions) *Node {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "kubetest-node"
	}
	bins := nodeBinaries(t)
	lockNode(t)
	mountTracefs(t)
	ip := MachineIP(t)
	c := start(t, true, ip)
	dir, err := os.MkdirTemp("", "rt-node-")
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{Cluster: c, Name: opts.Name, IP: ip, nodeDir: dir, ContainerdSocket: filepath.Join(dir, "containerd.sock"),
		KubeletDir: filepath.Join(dir, "kubelet"), proxyBin: bins["kube-proxy"]}
	t.Cleanup(func() { n.cleanup(t) })

	sandbox := pushSandboxImage(t, opts.Registry)
	n.startContainerd(t, bins["containerd"], opts.Registry, sandbox)
	c.startProcess(t, "kube-controller-manager", bins["kube-controller-manager"],
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--service-account-private-key-file="+filepath.Join(c.Dir, "sa.key"),
		"--root-ca-file="+filepath.Join(c.Dir, "ca.crt"),
		"--use-service-account-credentials=false", "--v=0")
	c.startProcess(t, "kube-scheduler", bins["kube-scheduler"],
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--secure-port=0", "--v=0")
	// Service addresses (the kubernetes service pods reach the apiserver through) in iptables mode; it sets no
	// conntrack sysctls (a test machine's are its own).
	c.startProcess(t, "kube-proxy", bins["kube-proxy"],
		"--kubeconfig="+c.Kubeconfig, "--hostname-override="+opts.Name, "--proxy-mode=iptables",
		"--cluster-cidr="+PodSubnet, "--conntrack-max-per-core=0",
		"--healthz-bind-address=127.0.0.1:"+strconv.Itoa(loopback.TestPort(t)),
		"--metrics-bind-address=127.0.0.1:"+strconv.Itoa(loopback.TestPort(t)), "--v=0")
	kubelet := n.startKubelet(t, bins["kubelet"], ip)
	n.waitReady(t, kubelet)
	return n
}

// mountTracefs mounts tracefs at /sys/kernel/tracing when it is not there, as a node's init (systemd) does at
// boot: a sensor pod mounts the host's tracefs read-only and, without CAP_SYS_ADMIN, cannot mount it itself. A
// machine booted without it (CI's fresh machines) would otherwise fail the sensor pod, not the test's setup.
func mountTracefs(t testing.TB) {
	t.Helper()
	const dir = "/sys/kernel/tracing"
	if _, err := os.Stat(filepath.Join(dir, "events")); err == nil {
		return
	}
	if err := syscall.Mount("tracefs", dir, "tracefs", 0, ""); err != nil {
		t.Fatalf("tracefs is not mounted at %s and mounting it failed (%v): a node's sensor needs it; run `mount -t tracefs tracefs %s` as root", dir, err, dir)
	}
}

// nodeLock is the file a node holds locked while it runs: the kubelet's cgroup tree (/kubepods), the CNI
// bridge and its addresses are the machine's, so nodes of tests in parallel packages take turns.
const nodeLock = "/run/runtrust-kubetest-node.lock"

// lockNode waits (up to 10 minutes) for the machine's node lock and releases it when the test ends.
func lockNode(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(nodeLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("the node lock %s: %v", nodeLock, err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		if time.Now().After(deadline) {
			f.Close()
			t.Fatalf("another test's node held %s for 10 minutes", nodeLock)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock, after the node's own cleanups (registered later)
}

// nodeBinaries finds every binary the node runs, or fails naming the missing ones and how to get them.
func nodeBinaries(t testing.TB) map[string]string {
	t.Helper()
	bins := map[string]string{}
	var missing []string
	for _, b := range []string{"kubelet", "kube-scheduler", "kube-controller-manager", "kube-proxy"} {
		p := filepath.Join(NodeDir(), b)
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p+" (`make kube-node`, or set "+EnvNodeDir+")")
		}
		bins[b] = p
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc", "iptables"} {
		p, err := exec.LookPath(b)
		if err != nil {
			missing = append(missing, b+" (apt-get install -y containerd runc iptables)")
		}
		bins[b] = p
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, plugin)); err != nil {
			missing = append(missing, filepath.Join(cniBinDir, plugin)+" (apt-get install -y containernetworking-plugins)")
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the test node needs: %s", strings.Join(missing, "; "))
	}
	return bins
}

// cniBinDir is where Debian's containernetworking-plugins puts the plugins.
const cniBinDir = "/usr/lib/cni"

// pushSandboxImage builds the pause program into an image and pushes it; it returns the reference.
func pushSandboxImage(t testing.TB, registry string) string {
	t.Helper()
	if registry == "" {
		t.Fatal("StartNode needs NodeOptions.Registry: the registry the sandbox image is pushed to")
	}
	ref, _ := sbomtest.Push(t, registry, SandboxRepo, programImage(t, "pause"))
	return ref
}

// programImage builds the Go program in this package's directory dir (static, CGO off) into an image that
// holds only it, as /<dir>, and runs it.
func programImage(t testing.TB, dir string) v1.Image {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(t.TempDir(), dir)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./"+dir)
	cmd.Dir = filepath.Dir(file)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", dir, err, out)
	}
	return sbomtest.Image(t, sbomtest.Spec{Files: []sbomtest.File{{Path: "/" + dir, HostPath: bin}}, Cmd: []string{"/" + dir}})
}

func (n *Node) startContainerd(t testing.TB, bin, registry, sandbox string) {
	t.Helper()
	cniConf := filepath.Join(n.nodeDir, "cni")
	if err := os.MkdirAll(cniConf, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cniConf, "10-kubetest.conflist"), []byte(fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "kubetest",
  "plugins": [
    {"type": "bridge", "bridge": "kubetest0", "isGateway": true, "ipMasq": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": %q}},
    {"type": "loopback"}
  ]
}
`, PodSubnet, filepath.Join(n.nodeDir, "ipam"))))
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # The CRI gives sandboxes (and Guaranteed pods) an OOM score of -998; lowering one's score needs
  # CAP_SYS_RESOURCE, which this machine's root lacks: scores are held at containerd's own instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors.%q]
    endpoint = [%q]
`, filepath.Join(n.nodeDir, "root"), filepath.Join(n.nodeDir, "state"), n.ContainerdSocket, sandbox,
		cniBinDir, cniConf, registry, "http://"+registry)
	path := filepath.Join(n.nodeDir, "containerd.toml")
	writeFile(t, path, []byte(config))
	p := n.startProcess(t, "containerd", bin, "--config", path)
	// Registered after containerd's own stop, so it runs first: the pods' containers outlive containerd (their
	// shims keep them), so they are killed while containerd still answers.
	t.Cleanup(func() { n.killContainers() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(n.ContainerdSocket); err == nil {
			return
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("containerd did not open %s:\n%s", n.ContainerdSocket, p.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *Node) startKubelet(t testing.TB, bin, ip string) *process {
	t.Helper()
	port, healthz := loopback.TestPort(t), loopback.TestPort(t)
	// cgroupfs: this machine's init is not systemd. Swap and cgroup v1 are allowed: the kubelet refuses both by
	// default on some versions and this machine may have either. Eviction thresholds are low so a busy test
	// disk does not taint the node. The kubelet serves on the node's address (the apiserver reaches it there for
	// logs and exec; a loopback node IP is refused) and only to clients with a certificate of the cluster's CA:
	// the apiserver's kubelet client. oomScoreAdj 0:
	// the kubelet would lower its own score to -999, which needs CAP_SYS_RESOURCE (see containerd's config).
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://%s
address: %s
port: %d
healthzBindAddress: 127.0.0.1
healthzPort: %d
readOnlyPort: 0
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: %s
authorization:
  mode: AlwaysAllow
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
resolvConf: /etc/resolv.conf
localStorageCapacityIsolation: false
oomScoreAdj: 0
`, n.ContainerdSocket, ip, port, healthz, filepath.Join(n.Cluster.Dir, "ca.crt"))
	path := filepath.Join(n.nodeDir, "kubelet.yaml")
	writeFile(t, path, []byte(config))
	return n.startProcess(t, "kubelet", bin, "--config="+path, "--kubeconfig="+n.Kubeconfig,
		"--root-dir="+n.KubeletDir, "--hostname-override="+n.Name, "--node-ip="+ip,
		"--cert-dir="+filepath.Join(n.nodeDir, "kubelet-pki"), "--v=1")
}

// MachineIP is the machine's first IPv4 address that is not loopback and not a container bridge's: the test
// node's IP.
func MachineIP(t testing.TB) string {
	t.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 || containerBridge(iface.Name) {
			continue
		}
		addrs, _ := iface.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	t.Fatal("the test node needs an IPv4 address that is not loopback (the kubelet refuses 127.0.0.1 as its node IP)")
	return ""
}

func containerBridge(name string) bool {
	for _, p := range []string{"docker", "cni", "kubetest", "veth", "podman", "br-", "virbr"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// waitReady waits for the node to be Ready and for the default service account (the controllers run).
func (n *Node) waitReady(t testing.TB, kubelet *process) {
	t.Helper()
	client := n.Client(t)
	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Minute)
	why := "no node object yet"
	for {
		if kubelet.exited() {
			t.Fatalf("the kubelet exited:\n%s", kubelet.tail())
		}
		node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err == nil {
			why = "node not Ready"
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady {
					why = fmt.Sprintf("node Ready=%s: %s %s", c.Status, c.Reason, c.Message)
					if c.Status == corev1.ConditionTrue {
						_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
						if err == nil {
							return
						}
						why = "no default service account yet: " + err.Error()
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node did not become ready in 3 min (%s):\n%s", why, kubelet.tail())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// killContainers kills and deletes every task containerd's CRI namespace holds.
func (n *Node) killContainers() {
	ctr := func(args ...string) string {
		out, _ := exec.Command("ctr", append([]string{"--address", n.ContainerdSocket, "--namespace", "k8s.io"}, args...)...).Output()
		return string(out)
	}
	for _, id := range strings.Fields(ctr("tasks", "list", "-q")) {
		ctr("tasks", "kill", "--all", "--signal", "SIGKILL", id)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range strings.Fields(ctr("tasks", "list", "-q")) {
		for ctr("tasks", "delete", id); time.Now().Before(deadline); ctr("tasks", "delete", id) {
			if !strings.Contains(ctr("tasks", "list", "-q"), id) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// cleanup removes what the node left on the machine beyond its directories: the pods' containers are the
// kubelet's and containerd's (stopped with them), but their cgroups, mounts and the CNI bridge outlive them.
func (n *Node) cleanup(t testing.TB) {
	t.Helper()
	// Unmount whatever is still mounted under the node's directories (sandbox shm, volumes, overlay roots).
	if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
		lines := strings.Split(string(b), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			f := strings.Fields(lines[i])
			if len(f) > 1 && strings.HasPrefix(f[1], n.nodeDir) {
				_ = exec.Command("umount", "-l", f[1]).Run()
			}
		}
	}
	_ = exec.Command("ip", "link", "delete", "kubetest0").Run()
	// kube-proxy's chains, and the bridge plugin's masquerade rules of pods that were never torn down.
	_ = exec.Command(n.proxyBin, "--cleanup", "--proxy-mode=iptables").Run()
	removeCNIRules()
	// The kubelet's pod cgroups (cgroupfs: <controller>/kubepods[/<qos>]/pod<uid>[/<container>]) stay when it
	// stops with pods on the node; their processes are gone, so they are removed deepest first.
	pods, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods/pod*")
	qos, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods/*/pod*")
	for _, pod := range append(pods, qos...) {
		containers, _ := filepath.Glob(filepath.Join(pod, "*"))
		for _, c := range containers {
			if fi, err := os.Stat(c); err == nil && fi.IsDir() {
				_ = os.Remove(c)
			}
		}
		_ = os.Remove(pod)
	}
	if err := os.RemoveAll(n.nodeDir); err != nil {
		t.Errorf("the node's directory: %v", err)
	}
}

// events returns the cluster's events, oldest first, one per line: what the controllers, the scheduler and the
// kubelet said, for a failure message.
func (n *Node) events(t testing.TB) string {
	t.Helper()
	list, err := n.Client(t).CoreV1().Events("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return "events: " + err.Error()
	}
	var b strings.Builder
	for _, e := range list.Items {
		fmt.Fprintf(&b, "%s %s/%s %s: %s\n", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
	}
	return b.String()
}

// WaitRunning waits until the one pod in namespace ns that selector matches is Running, and returns it.
func (n *Node) WaitRunning(t testing.TB, ns, selector string, d time.Duration) corev1.Pod {
	t.Helper()
	client := n.Client(t)
	deadline := time.Now().Add(d)
	for {
		pods, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 1 && pods.Items[0].Status.Phase == corev1.PodRunning {
			return pods.Items[0]
		}
		if time.Now().After(deadline) {
			var phases []string
			for _, p := range pods.Items {
				phases = append(phases, p.Name+": "+string(p.Status.Phase))
			}
			t.Fatalf("no one running pod %q in %s after %s (%v); events:\n%s", selector, ns, d, phases, n.events(t))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Exec runs argv in a container of a pod through the API, as `kubectl exec` does (the apiserver streams it
// from the kubelet), and returns what it wrote to stdout; a failure or a non-zero exit fails the test.
func (n *Node) Exec(t testing.TB, ns, pod, container string, argv ...string) string {
	t.Helper()
	cfg := n.RESTConfig()
	client := n.Client(t)
	req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: argv, Stdout: true, Stderr: true},
			scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	if err != nil {
		t.Fatal(err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err != nil {
		t.Fatal(err)
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, httpstream.IsUpgradeFailure)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		t.Fatalf("exec %v in %s/%s: %v (stderr %q)", argv, ns, pod, err, stderr.String())
	}
	return stdout.String()
}

// removeCNIRules deletes the nat POSTROUTING rules the bridge plugin added for the node's network ("kubetest")
// and the chains they jump to.
func removeCNIRules() {
	out, err := exec.Command("iptables", "-t", "nat", "-S", "POSTROUTING").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A POSTROUTING ") || !strings.Contains(line, `name: \"kubetest\"`) {
			continue
		}
		args := splitRule(strings.TrimPrefix(line, "-A POSTROUTING "))
		_ = exec.Command("iptables", append([]string{"-t", "nat", "-D", "POSTROUTING"}, args...)...).Run()
		for i, a := range args {
			if a == "-j" && i+1 < len(args) && strings.HasPrefix(args[i+1], "CNI-") {
				_ = exec.Command("iptables", "-t", "nat", "-F", args[i+1]).Run()
				_ = exec.Command("iptables", "-t", "nat", "-X", args[i+1]).Run()
			}
		}
	}
}

// splitRule splits an iptables -S rule into arguments, keeping a double-quoted comment (with \" inside) whole.
func splitRule(rule string) []string {
	var args []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(rule); i++ {
		ch := rule[i]
		switch {
		case ch == '\\' && quoted && i+1 < len(rule):
			i++
			cur.WriteByte(rule[i])
		case ch == '"':
			quoted = !quoted
		case ch == ' ' && !quoted:
			if cur.Len() > 0 {
				args = append(args, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(ch)
		}
	}
	if cur.Len() > 0 {
		args = append(args, cur.String())
	}
	return args
}
