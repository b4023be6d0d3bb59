package deploy

import (
	"context"
	"crypto/x509"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runtrust/runtrust/internal/kubetest"
)

const namespace = "runtrust"

// cluster is a kube-apiserver with the install namespace created (for real: a server-side dry-run of a
// namespaced object needs its namespace to exist), and a kubeconfig for helm and kubectl.
type cluster struct {
	*kubetest.Cluster
	env []string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	return newCluster(t, kubetest.Start(t))
}

// newCluster gives a running control plane helm and kubectl of their own, and the test namespace.
func newCluster(t *testing.T, kc *kubetest.Cluster) *cluster {
	t.Helper()
	c := &cluster{Cluster: kc}
	// helm installs only on a server whose version satisfies the chart's kubeVersion; a kube-apiserver built
	// before the Makefile stamped the version calls itself v0.0.0-master.
	v, err := c.Client(t).Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != kubetest.Version {
		t.Fatalf("the kube-apiserver (%s) reports version %q, not %s: it was built without the version stamp; "+
			"delete it and run `make kube-apiserver`", kubetest.APIServerPath(), v.GitVersion, kubetest.Version)
	}
	// HELM_* dirs in the temp dir: the test must not read or write the user's helm configuration.
	dir := t.TempDir()
	c.env = []string{"KUBECONFIG=" + c.Kubeconfig, "HELM_CONFIG_HOME=" + dir + "/config", "HELM_CACHE_HOME=" + dir + "/cache",
		"HELM_DATA_HOME=" + dir + "/data"}
	c.kubectl(t, nil, "create", "namespace", namespace)
	return c
}

func (c *cluster) kubectl(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	return mustRun(t, stdin, c.env, kubectlBin(t), args...)
}

func (c *cluster) helm(t *testing.T, args ...string) string {
	t.Helper()
	return mustRun(t, nil, c.env, helmBin(t), args...)
}

// canI asks `kubectl auth can-i` as the service account: true for yes, false for no, a failure otherwise.
func (c *cluster) canI(t *testing.T, sa string, args ...string) bool {
	t.Helper()
	args = append([]string{"auth", "can-i", "--as=system:serviceaccount:" + namespace + ":" + sa}, args...)
	out, errOut, err := run(t, nil, c.env, kubectlBin(t), args...)
	switch strings.TrimSpace(out) {
	case "yes":
		return err == nil
	case "no":
		// can-i exits 1 for no; anything else is a failure of the command itself.
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
			return false
		}
	}
	t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	return false
}

// TestManifestsOnAPIServer: every rendering of both charts is accepted by a real kube-apiserver (server-side
// apply, dry-run: schema, defaulting and admission); then the collector chart is installed, upgraded to both
// modes and uninstalled with helm, and the service accounts' rights are probed with `kubectl auth can-i`.
func TestManifestsOnAPIServer(t *testing.T) {
	c := startCluster(t)

	renders := map[string]string{
		"runtrust minimal":               mustTemplate(t, "runtrust", []string{testdata("values-minimal.yaml")}),
		"runtrust full":                  mustTemplate(t, "runtrust", []string{testdata("values-full.yaml")}),
		"runtrust impact with token":     mustTemplate(t, "runtrust", []string{testdata("values-minimal.yaml")}, "auth.joinKey=", "auth.token=rtc_test", "sensor.enabled=true"),
		"runtrust impact with join key":  mustTemplate(t, "runtrust", []string{testdata("values-minimal.yaml")}, "sensor.enabled=true"),
		"runtrust sensor only":           mustTemplate(t, "runtrust", []string{testdata("values-minimal.yaml")}, "auth.joinKey=", "auth.existingSecret=corp-runtrust", "controller.enabled=false", "sensor.enabled=true"),
		"runtime-service with postgres":  mustTemplate(t, "runtime-service", nil, "joinKeys={join-key-for-the-chart-test-0001}"),
		"runtime-service full":           mustTemplate(t, "runtime-service", []string{testdata("runtime-service-values-full.yaml")}),
		"runtime-service external store": mustTemplate(t, "runtime-service", nil, "joinKeys={join-key-for-the-chart-test-0001}", "postgres.enabled=false", "externalDatabase.existingSecret=corp-db"),
	}
	for name, rendered := range renders {
		t.Run("dry-run "+name, func(t *testing.T) {
			out := c.kubectl(t, []byte(rendered), "apply", "--server-side", "--dry-run=server", "--field-manager=runtrust-test", "-f", "-")
			n := strings.Count(out, "serverside-applied (server dry run)")
			if want := strings.Count(stripComments(rendered), "\nkind: "); n != want || n == 0 {
				t.Errorf("%d objects applied, want %d:\n%s", n, want, out)
			}
		})
	}

	// A real install, with clusterUID left empty: the chart looks up kube-system's uid for the join-key
	// enrolment.
	c.helm(t, "install", "rt", chartDir(t, "runtrust"), "--namespace", namespace, "--values", testdata("values-minimal.yaml"),
		"--set", "clusterUID=")
	admin := c.Client(t)
	ctx := context.Background()
	ks, err := admin.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := admin.AppsV1().Deployments(namespace).Get(ctx, "rt-runtrust-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gotUID := ""
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "RUNTRUST_CLUSTER_UID" {
			gotUID = e.Value
		}
	}
	if gotUID != string(ks.UID) {
		t.Errorf("RUNTRUST_CLUSTER_UID = %q, want kube-system's uid %q", gotUID, ks.UID)
	}

	const ctrl = "rt-runtrust-controller"
	t.Run("controller can", func(t *testing.T) {
		for _, res := range []string{"nodes", "pods", "deployments.apps", "replicasets.apps", "statefulsets.apps",
			"daemonsets.apps", "jobs.batch", "cronjobs.batch"} {
			for _, verb := range []string{"get", "list", "watch"} {
				if !c.canI(t, ctrl, verb, res, "--all-namespaces") {
					t.Errorf("controller cannot %s %s", verb, res)
				}
			}
		}
		if !c.canI(t, ctrl, "get", "namespaces/kube-system") {
			t.Error("controller cannot get namespace kube-system (the cluster uid)")
		}
	})
	t.Run("controller cannot", func(t *testing.T) {
		for _, args := range [][]string{
			{"get", "secrets", "-n", namespace}, {"list", "secrets", "--all-namespaces"}, {"watch", "secrets", "--all-namespaces"},
			{"list", "configmaps", "--all-namespaces"}, {"get", "configmaps", "-n", "kube-system"},
			{"create", "pods", "-n", "default"}, {"delete", "pods", "-n", "default"}, {"patch", "pods", "-n", "default"},
			{"update", "pods", "-n", "default"}, {"create", "pods", "--subresource=exec", "-n", "default"},
			{"get", "pods", "--subresource=log", "-n", "default"}, {"create", "deployments.apps", "-n", "default"},
			{"delete", "nodes"}, {"patch", "nodes"}, {"list", "namespaces"}, {"watch", "namespaces"},
			{"get", "namespaces/default"}, {"list", "events", "--all-namespaces"},
			{"list", "ingresses.networking.k8s.io", "--all-namespaces"}, {"watch", "leases.coordination.k8s.io", "--all-namespaces"},
			{"list", "customresourcedefinitions.apiextensions.k8s.io"}, {"list", "clusterroles.rbac.authorization.k8s.io"},
			{"impersonate", "serviceaccounts", "-n", namespace}, {"create", "serviceaccounts/token", "-n", namespace},
		} {
			if c.canI(t, ctrl, args...) {
				t.Errorf("controller can %v", args)
			}
		}
	})

	// Upgrade to Impact mode with a token: the sensor's account appears, and it reads pods, nothing else.
	c.helm(t, "upgrade", "rt", chartDir(t, "runtrust"), "--namespace", namespace, "--values", testdata("values-minimal.yaml"),
		"--set", "clusterUID=", "--set", "auth.joinKey=", "--set", "auth.token=rtc_test", "--set", "sensor.enabled=true")
	if _, err := admin.AppsV1().DaemonSets(namespace).Get(ctx, "rt-runtrust-sensor", metav1.GetOptions{}); err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
	const sensor = "rt-runtrust-sensor"
	t.Run("sensor can", func(t *testing.T) {
		for _, verb := range []string{"list", "watch"} {
			if !c.canI(t, sensor, verb, "pods", "--all-namespaces") {
				t.Errorf("sensor cannot %s pods", verb)
			}
		}
	})
	t.Run("sensor cannot", func(t *testing.T) {
		for _, args := range [][]string{
			{"get", "pods", "-n", "default"}, {"create", "pods", "-n", "default"}, {"delete", "pods", "-n", "default"},
			{"get", "pods", "--subresource=log", "-n", "default"}, {"list", "nodes"}, {"get", "secrets", "-n", namespace},
			{"list", "secrets", "--all-namespaces"}, {"list", "configmaps", "--all-namespaces"},
			{"list", "deployments.apps", "--all-namespaces"}, {"get", "namespaces/kube-system"},
		} {
			if c.canI(t, sensor, args...) {
				t.Errorf("sensor can %v", args)
			}
		}
	})

	// Uninstall: the rights go with the release; the controller's volume (queue, enrolled token) stays.
	c.helm(t, "uninstall", "rt", "--namespace", namespace, "--wait", "--timeout", "2m")
	deadline := time.Now().Add(30 * time.Second)
	for c.canI(t, ctrl, "list", "pods", "--all-namespaces") {
		if time.Now().After(deadline) {
			t.Fatal("the controller can still list pods 30s after the uninstall")
		}
		time.Sleep(500 * time.Millisecond)
	}
	if _, err := admin.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, ctrl, metav1.GetOptions{}); err != nil {
		t.Errorf("the controller's PVC went with the uninstall (it should be kept): %v", err)
	}
}

// TestRuntimeServiceChartKeepsPassword: an upgrade keeps the generated Postgres password (read back from the
// Secret the install made), so the database stays reachable, and the generated CA, so collectors that trust it
// still do; the server certificate is issued again by that CA. An uninstall keeps both.
func TestRuntimeServiceChartKeepsPassword(t *testing.T) {
	c := startCluster(t)
	chart := chartDir(t, "runtime-service")
	c.helm(t, "install", "rs", chart, "--namespace", namespace, "--set", "joinKeys={join-key-for-the-chart-test-0001}")
	admin := c.Client(t)
	ctx := context.Background()
	get := func() (string, string) {
		s, err := admin.CoreV1().Secrets(namespace).Get(ctx, "rs-runtime-service-postgres", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return string(s.Data["password"]), string(s.Data["database-url"])
	}
	tlsData := func(name string) map[string][]byte {
		s, err := admin.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Data
	}
	ca := tlsData("rs-runtime-service-ca")
	pw, url := get()
	if len(pw) != 32 || !strings.Contains(url, ":"+pw+"@rs-runtime-service-postgres:5432/runtrust") {
		t.Fatalf("password %q, database-url %q", pw, url)
	}
	c.helm(t, "upgrade", "rs", chart, "--namespace", namespace, "--set", "joinKeys={join-key-for-the-chart-test-0001,join-key-for-the-chart-test-0002}", "--set", "retention=30d")
	if pw2, url2 := get(); pw2 != pw || url2 != url {
		t.Errorf("the upgrade changed the password: %q → %q", pw, pw2)
	}
	if ca2 := tlsData("rs-runtime-service-ca"); string(ca2["ca.crt"]) != string(ca["ca.crt"]) || string(ca2["ca.key"]) != string(ca["ca.key"]) {
		t.Errorf("the upgrade made a new CA: the collectors trusting the first would be refused")
	}
	verifyLeaf(t, tlsData("rs-runtime-service-tls")["tls.crt"], parseCert(t, ca["ca.crt"]), "rs-runtime-service.runtrust.svc", x509.ExtKeyUsageServerAuth)
	c.helm(t, "uninstall", "rs", "--namespace", namespace)
	if pw3, _ := get(); pw3 != pw {
		t.Errorf("the uninstall did not keep the database Secret")
	}
	if ca3 := tlsData("rs-runtime-service-ca"); string(ca3["ca.crt"]) != string(ca["ca.crt"]) {
		t.Errorf("the uninstall did not keep the CA Secret")
	}
}
