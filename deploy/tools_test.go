package deploy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The helm and kubectl binaries the Makefile builds into the per-machine cache (`make helm kubectl`), found
// through these variables or the Makefile's default paths. Missing ones fail the test with the command that
// builds them: on this project's machines both are expected.
const (
	envHelm        = "RUNTRUST_HELM"
	envKubectl     = "RUNTRUST_KUBECTL"
	helmVersion    = "v3.22.0"
	kubectlVersion = "v1.34.2"
)

func cachedTool(t testing.TB, env, name, target string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(home, ".cache", "runtrust", name)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s not found (%v): run `make %s` in the repository root (builds it from the Go module proxy), or set %s",
			path, err, target, env)
	}
	return path
}

func helmBin(t testing.TB) string {
	return cachedTool(t, envHelm, "helm-"+helmVersion, "helm")
}

func kubectlBin(t testing.TB) string {
	return cachedTool(t, envKubectl, "kubectl-"+kubectlVersion, "kubectl")
}

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("the deploy tests run from deploy/, below go.mod: %v", err)
	}
	return dir
}

func chartDir(t testing.TB, name string) string {
	return filepath.Join(repoRoot(t), "deploy", "helm", name)
}

// run runs bin with args, stdin as its input, and returns stdout and stderr; a non-zero exit is err.
func run(t testing.TB, stdin []byte, env []string, bin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// mustRun is run that fails the test on a non-zero exit, showing what the command said.
func mustRun(t testing.TB, stdin []byte, env []string, bin string, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, stdin, env, bin, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// helmTemplate renders a chart with the given values files and --set flags.
func helmTemplate(t testing.TB, chart, namespace string, valuesFiles []string, sets ...string) (string, error) {
	t.Helper()
	args := []string{"template", "rt", chartDir(t, chart), "--namespace", namespace}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out, errOut, err := run(t, nil, nil, helmBin(t), args...)
	if err != nil {
		return out, errors.New(strings.TrimSpace(errOut))
	}
	return out, nil
}

func mustTemplate(t testing.TB, chart string, valuesFiles []string, sets ...string) string {
	t.Helper()
	out, err := helmTemplate(t, chart, "runtrust", valuesFiles, sets...)
	if err != nil {
		t.Fatalf("helm template %s %v %v: %v", chart, valuesFiles, sets, err)
	}
	return out
}

func testdata(name string) string { return filepath.Join("testdata", name) }

// manifests is a rendered chart, decoded: every object by kind and name.
type manifests struct {
	daemonSets   map[string]*appsv1.DaemonSet
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	clusterRoles map[string]*rbacv1.ClusterRole
	bindings     map[string]*rbacv1.ClusterRoleBinding
	accounts     map[string]*corev1.ServiceAccount
	kinds        []string // kind/name of every object, in order
}

func decodeManifests(t testing.TB, rendered string) *manifests {
	t.Helper()
	m := &manifests{
		daemonSets: map[string]*appsv1.DaemonSet{}, deployments: map[string]*appsv1.Deployment{},
		statefulSets: map[string]*appsv1.StatefulSet{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, clusterRoles: map[string]*rbacv1.ClusterRole{},
		bindings: map[string]*rbacv1.ClusterRoleBinding{}, accounts: map[string]*corev1.ServiceAccount{},
	}
	for i, doc := range strings.Split(rendered, "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var meta metav1.TypeMeta
		decodeDoc(t, i, doc, &meta)
		var obj interface{ GetName() string }
		switch meta.Kind {
		case "DaemonSet":
			o := &appsv1.DaemonSet{}
			decodeDoc(t, i, doc, o)
			m.daemonSets[o.Name], obj = o, o
		case "Deployment":
			o := &appsv1.Deployment{}
			decodeDoc(t, i, doc, o)
			m.deployments[o.Name], obj = o, o
		case "StatefulSet":
			o := &appsv1.StatefulSet{}
			decodeDoc(t, i, doc, o)
			m.statefulSets[o.Name], obj = o, o
		case "ConfigMap":
			o := &corev1.ConfigMap{}
			decodeDoc(t, i, doc, o)
			m.configMaps[o.Name], obj = o, o
		case "Secret":
			o := &corev1.Secret{}
			decodeDoc(t, i, doc, o)
			m.secrets[o.Name], obj = o, o
		case "ClusterRole":
			o := &rbacv1.ClusterRole{}
			decodeDoc(t, i, doc, o)
			m.clusterRoles[o.Name], obj = o, o
		case "ClusterRoleBinding":
			o := &rbacv1.ClusterRoleBinding{}
			decodeDoc(t, i, doc, o)
			m.bindings[o.Name], obj = o, o
		case "ServiceAccount":
			o := &corev1.ServiceAccount{}
			decodeDoc(t, i, doc, o)
			m.accounts[o.Name], obj = o, o
		default:
			o := &metav1.PartialObjectMetadata{}
			decodeDoc(t, i, doc, o)
			obj = o
		}
		m.kinds = append(m.kinds, meta.Kind+"/"+obj.GetName())
	}
	return m
}

func decodeDoc(t testing.TB, i int, doc string, into any) {
	t.Helper()
	dec := k8syaml.NewYAMLOrJSONDecoder(strings.NewReader(doc), 4096)
	if err := dec.Decode(into); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("rendered document %d does not decode as %T: %v\n%s", i, into, err, doc)
	}
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
