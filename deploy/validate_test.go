package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/runtrust/runtrust/testbed"
)

// TestRenderedConfigsValidate: what the chart renders — the shipped config, the OTLP fork overlay, and the env
// vars and mounted files the workloads give the collector — is accepted by the built distribution's
// `validate`, for each mode and value set; values the collector refuses fail there with the field named.
func TestRenderedConfigsValidate(t *testing.T) {
	minimal := []string{testdata("values-minimal.yaml")}
	full := []string{testdata("values-full.yaml")}
	token := []string{"auth.joinKey=", "auth.token=rtc_test_token_0123456789"}
	for _, c := range []struct {
		name     string
		values   []string
		sets     []string
		workload string // kind/name
		wantErr  []string
	}{
		{"controller minimal", minimal, nil, "Deployment/rt-runtrust-controller", nil},
		{"controller full", full, nil, "Deployment/rt-runtrust-controller", nil},
		{"controller with a token", minimal, token, "Deployment/rt-runtrust-controller", nil},
		{"sensor minimal", minimal, append(token, "sensor.enabled=true"), "DaemonSet/rt-runtrust-sensor", nil},
		{"sensor full", full, nil, "DaemonSet/rt-runtrust-sensor", nil},
		{"sensor with the join key", minimal, []string{"sensor.enabled=true"}, "DaemonSet/rt-runtrust-sensor", nil},
		{"controller beside sensors, join key", minimal, []string{"sensor.enabled=true"}, "Deployment/rt-runtrust-controller", nil},
		{"controller, snapshot interval too short", minimal, []string{"controller.snapshotInterval=10ms"}, "Deployment/rt-runtrust-controller",
			[]string{"receivers::k8sinventory", "snapshot_interval: 10ms: must be 0 (off) or at least 1s"}},
		{"controller, bad namespace", minimal, []string{"controller.namespaces.include={Shop}"}, "Deployment/rt-runtrust-controller",
			[]string{"receivers::k8sinventory", `namespaces.include[0]: "Shop" is not a namespace name`}},
		{"controller, registry with a URL", minimal, []string{"controller.trustedRegistries={https://registry.corp.example}"}, "Deployment/rt-runtrust-controller",
			[]string{"trusted_registries[0]", "URL scheme"}},
		// The chart's registry Secret is mounted and read: a bad credential in it is named by its file.
		{"controller, bad registry credentials", append(full, testdata("values-bad-registry-credentials.yaml")), nil,
			"Deployment/rt-runtrust-controller", []string{"credentials.pull_secret_files[2]", "rt-runtrust-registry/.dockerconfigjson", "not base64"}},
		{"sensor, ring buffer not a power of two", minimal, append(token, "sensor.enabled=true", "sensor.ringBufferSize=1000000"), "DaemonSet/rt-runtrust-sensor",
			[]string{"receivers::runtimesensor", "ring_buffer_size: 1000000 is not a power of two"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := decodeManifests(t, mustTemplate(t, "runtrust", c.values, c.sets...))
			var pod corev1.PodSpec
			switch kind, name, _ := strings.Cut(c.workload, "/"); kind {
			case "Deployment":
				d := m.deployments[name]
				if d == nil {
					t.Fatalf("no %s in %v", c.workload, m.kinds)
				}
				pod = d.Spec.Template.Spec
			case "DaemonSet":
				d := m.daemonSets[name]
				if d == nil {
					t.Fatalf("no %s in %v", c.workload, m.kinds)
				}
				pod = d.Spec.Template.Spec
			}
			out, err := validatePod(t, m, pod)
			if c.wantErr == nil {
				if err != nil {
					t.Fatalf("validate: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("validate accepted it, want an error with %q:\n%s", c.wantErr, out)
			}
			for _, w := range c.wantErr {
				if !strings.Contains(out, w) {
					t.Errorf("validate output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// validatePod runs `otelcol-runtrust validate` as the pod would run the collector.
func validatePod(t *testing.T, m *manifests, pod corev1.PodSpec) (string, error) {
	t.Helper()
	env, args := podCommand(t, m, pod, nil)
	out, errOut, err := run(t, nil, nil, "/usr/bin/env", append(append([]string{"-i"}, env...),
		append([]string{testbed.CollectorBinary(t), "validate"}, args...)...)...)
	return out + errOut, err
}

// podCommand is the collector's environment and arguments as the pod gives them: its args, its env (secrets and
// downward-API fields filled in, then overrides set), and its volumes laid out under a temp dir that stands for
// the container's root (every path the env and args name is moved below it).
func podCommand(t *testing.T, m *manifests, pod corev1.PodSpec, overrides map[string]string) (env, args []string) {
	t.Helper()
	root := t.TempDir()
	ctr := pod.Containers[0]
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	var mountPaths []string
	for _, vm := range ctr.VolumeMounts {
		dir := filepath.Join(root, vm.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		mountPaths = append(mountPaths, vm.MountPath)
		v := volumes[vm.Name]
		var files map[string]string
		switch {
		case v.ConfigMap != nil:
			cm := m.configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("volume %s: ConfigMap %s is not in the chart", vm.Name, v.ConfigMap.Name)
			}
			files = cm.Data
		case v.Secret != nil:
			files = secretFiles(t, m, v.Secret.SecretName)
		}
		for name, content := range files {
			writeTestFile(t, filepath.Join(dir, name), content)
		}
	}
	mountRE := regexp.MustCompile(`(^|[\s"=\[,])(` + strings.Join(quoteAll(mountPaths), "|") + `)`)
	moved := func(s string) string { return mountRE.ReplaceAllString(s, "${1}"+root+"${2}") }

	env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root}
	vars := map[string]string{}
	for _, e := range ctr.Env {
		val := e.Value
		if src := e.ValueFrom; src != nil {
			switch {
			case src.FieldRef != nil && src.FieldRef.FieldPath == "status.podIP":
				val = "127.0.0.1"
			case src.FieldRef != nil && src.FieldRef.FieldPath == "spec.nodeName":
				val = "node-1"
			case src.SecretKeyRef != nil:
				val = secretFiles(t, m, src.SecretKeyRef.Name)[src.SecretKeyRef.Key]
				if val == "" {
					t.Fatalf("env %s: Secret %s has no key %s", e.Name, src.SecretKeyRef.Name, src.SecretKeyRef.Key)
				}
			default:
				t.Fatalf("env %s: a source the test does not fill in: %+v", e.Name, src)
			}
		}
		// $(VAR) is Kubernetes' reference to a variable defined before.
		val = regexp.MustCompile(`\$\(([A-Z0-9_]+)\)`).ReplaceAllStringFunc(val, func(ref string) string {
			return vars[ref[2:len(ref)-1]]
		})
		vars[e.Name] = val
		if o, ok := overrides[e.Name]; ok {
			val = o
		}
		env = append(env, e.Name+"="+moved(val))
	}
	for k, v := range overrides {
		if _, ok := vars[k]; !ok {
			env = append(env, k+"="+v)
		}
	}
	if ctr.Command != nil {
		t.Fatalf("the chart overrides the image's command: %v", ctr.Command)
	}
	for _, a := range ctr.Args {
		args = append(args, moved(a))
	}
	return env, args
}

func quoteAll(ss []string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, regexp.QuoteMeta(s))
	}
	// Longer paths first: the regexp alternation takes the first that matches.
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if len(out[j]) > len(out[i]) {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// secretFiles is a Secret's content: the chart's own from the render, and stand-ins for the Secrets an
// install brings (values-full.yaml names them), in the shape the collector reads.
func secretFiles(t *testing.T, m *manifests, name string) map[string]string {
	t.Helper()
	if s := m.secrets[name]; s != nil {
		return s.StringData
	}
	ca := readFile(t, filepath.Join(repoRoot(t), "processors", "imageintegrityprocessor", "testdata", "ca.pem"))
	dockerConfig := `{"auths":{"registry.corp.example":{"auth":"cnVudHJ1c3Q6czNjcmV0"}}}`
	brought := map[string]map[string]string{
		"corp-ca":                {"ca.crt": ca},
		"runtrust-service-ca":    {"ca.crt": ca},
		"corp-registry":          {"password": "s3cret"},
		"corp-pull":              {".dockerconfigjson": dockerConfig},
		"artifactory-pull":       {".dockerconfigjson": dockerConfig},
		"otlp-backend-auth":      {"authorization": "Bearer backend-token"},
		"corp-runtrust":          {"token": "rtc_existing_secret_token"},
		"runtrust-collector-tls": selfSignedPair(t),
	}
	s, ok := brought[name]
	if !ok {
		t.Fatalf("Secret %s is neither rendered by the chart nor one the test brings", name)
	}
	return s
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// selfSignedPair is a kubernetes.io/tls Secret's files (tls.crt, tls.key) holding a fresh self-signed pair.
func selfSignedPair(t *testing.T) map[string]string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "runtrust-collector"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"tls.crt": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		"tls.key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
	}
}
