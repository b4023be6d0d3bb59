package deploy

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// TestChartsLint: `helm lint` passes for both charts, with the least they need and with every value set.
func TestChartsLint(t *testing.T) {
	for _, c := range []struct {
		chart string
		flags []string
	}{
		{"runtrust", []string{"--values", testdata("values-minimal.yaml")}},
		{"runtrust", []string{"--values", testdata("values-full.yaml")}},
		{"runtime-service", []string{"--set", "joinKeys={join-key-for-the-chart-test-0001}"}},
		{"runtime-service", []string{"--values", testdata("runtime-service-values-full.yaml")}},
	} {
		mustRun(t, nil, nil, helmBin(t), append([]string{"lint", "--strict", chartDir(t, c.chart)}, c.flags...)...)
	}
}

// TestChartShipsDistributionConfigs: the configs the chart mounts are the files under distributions/, byte for
// byte, both as copied into the chart and as rendered into its ConfigMaps.
func TestChartShipsDistributionConfigs(t *testing.T) {
	root := repoRoot(t)
	m := decodeManifests(t, mustTemplate(t, "runtrust", []string{testdata("values-full.yaml")}))
	for _, mode := range []string{"controller", "sensor"} {
		want := readFile(t, filepath.Join(root, "distributions", mode, "config.yaml"))
		copyPath := filepath.Join(root, "deploy", "helm", "runtrust", "files", mode+"-config.yaml")
		if got := readFile(t, copyPath); got != want {
			t.Errorf("%s differs from distributions/%s/config.yaml: copy it over (cp distributions/%s/config.yaml %s)",
				copyPath, mode, mode, copyPath)
		}
		cm := m.configMaps["rt-runtrust-"+mode]
		if cm == nil {
			t.Fatalf("no ConfigMap rt-runtrust-%s in %v", mode, m.kinds)
		}
		if cm.Data["config.yaml"] != want {
			t.Errorf("ConfigMap rt-runtrust-%s config.yaml is not distributions/%s/config.yaml", mode, mode)
		}
	}
}

// TestChartRBACMatchesDistribution: the controller's ClusterRole in the chart grants exactly what
// distributions/k8s/rbac.yaml grants (the file the k8sinventory receiver's integration test runs with).
func TestChartRBACMatchesDistribution(t *testing.T) {
	dist := decodeManifests(t, readFile(t, filepath.Join(repoRoot(t), "distributions", "k8s", "rbac.yaml")))
	chart := decodeManifests(t, mustTemplate(t, "runtrust", []string{testdata("values-minimal.yaml")}))
	want := dist.clusterRoles["runtrust-k8sinventory"]
	got := chart.clusterRoles["rt-runtrust-controller"]
	if want == nil || got == nil {
		t.Fatalf("ClusterRoles: distributions %v, chart %v", dist.kinds, chart.kinds)
	}
	if !reflect.DeepEqual(got.Rules, want.Rules) {
		t.Errorf("chart controller rules differ from distributions/k8s/rbac.yaml:\nchart: %+v\nfile:  %+v", got.Rules, want.Rules)
	}
}

// TestChartRequiredValues: values that cannot work stop the render with a message that names the value and
// says what to set.
func TestChartRequiredValues(t *testing.T) {
	minimal := []string{testdata("values-minimal.yaml")}
	for _, c := range []struct {
		name   string
		chart  string
		values []string
		sets   []string
		want   string
	}{
		{"no values at all", "runtrust", nil, nil, "auth: set exactly one of auth.joinKey, auth.token, auth.existingSecret"},
		{"no cluster name", "runtrust", minimal, []string{"clusterName="}, "clusterName: required"},
		{"no endpoint", "runtrust", minimal, []string{"runtimeService.endpoint="}, "runtimeService.endpoint: required"},
		{"join key and token", "runtrust", minimal, []string{"auth.token=rtc_x"}, "set exactly one of"},
		{"join key with sensors, no cluster to ask", "runtrust", minimal, []string{"sensor.enabled=true", "controller.enabled=false", "clusterUID="}, "clusterUID: a join-key enrolment needs the cluster uid"},
		{"join key without uid, no cluster to ask", "runtrust", minimal, []string{"clusterUID="}, "clusterUID: a join-key enrolment needs the cluster uid"},
		{"no trusted registries", "runtrust", minimal, []string{"controller.trustedRegistries=null"}, "controller.trustedRegistries: required"},
		{"bad existing secret type", "runtrust", minimal, []string{"auth.joinKey=", "auth.existingSecret=s", "auth.existingSecretType=password"}, "at '/auth/existingSecretType': value must be one of 'joinKey', 'token'"},
		{"otlp backend without endpoint", "runtrust", minimal, []string{"otlpBackend.enabled=true"}, "otlpBackend.endpoint: required"},
		// The values schema: a misspelt or mistyped value stops the install rather than being ignored.
		{"misspelt value", "runtrust", minimal, []string{"sensor.enable=true"}, "at '/sensor': additional properties 'enable' not allowed"},
		{"bad severity", "runtrust", minimal, []string{"controller.untrustedSeverity=severe"}, "at '/controller/untrustedSeverity': value must be one of"},
		{"relative host path", "runtrust", minimal, []string{"sensor.hostQueueDir=var/lib/q"}, "at '/sensor/hostQueueDir'"},
		{"service misspelt value", "runtime-service", nil, []string{"joinKeys={join-key-for-the-chart-test-0001}", "postgress.enabled=false"}, "additional properties 'postgress' not allowed"},
		{"service password that breaks the URL", "runtime-service", nil, []string{"joinKeys={join-key-for-the-chart-test-0001}", "postgres.password=a@b"}, "at '/postgres/password'"},
		{"service without join keys", "runtime-service", nil, nil, "joinKeys: set at least one join key"},
		{"service with a short join key", "runtime-service", nil, []string{"joinKeys={short}"}, "joinKeys[0]: must be 16 to 256 characters, got 5"},
		{"service without a database", "runtime-service", nil, []string{"joinKeys={join-key-for-the-chart-test-0001}", "postgres.enabled=false"}, "externalDatabase.existingSecret: required"},
		{"service with the old tlsSecret", "runtime-service", nil, []string{"joinKeys={join-key-for-the-chart-test-0001}", "tlsSecret=rs-tls"}, "tlsSecret: renamed tls.existingSecret"},
		{"service mTLS with its own certificate and no client CA", "runtime-service", nil, []string{"joinKeys={join-key-for-the-chart-test-0001}", "tls.existingSecret=rs-tls", "tls.mtls.enabled=true"}, "tls.mtls.clientCASecret: required with tls.existingSecret"},
		{"client certificate over plain gRPC", "runtrust", minimal, []string{"runtimeService.insecure=true", "runtimeService.clientCertSecret=c"}, "runtimeService.clientCertSecret: a client certificate needs TLS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := helmTemplate(t, c.chart, "runtrust", c.values, c.sets...)
			if err == nil {
				t.Fatalf("rendered, want an error with %q:\n%s", c.want, out)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q lacks %q", err, c.want)
			}
		})
	}
}

// TestImpactModeWithOneJoinKey: with a join key and sensors, the controller and every sensor get the key and the
// cluster uid, each its own collector id (the controller "controller", a sensor its node name from the downward
// API), and no shared token; the controller reports what it runs, so the cluster's mode comes from its sensors.
// With a token the collectors share it and the controller says impact.
func TestImpactModeWithOneJoinKey(t *testing.T) {
	envOf := func(c corev1.Container) map[string]corev1.EnvVar {
		out := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			out[e.Name] = e
		}
		return out
	}
	m := decodeManifests(t, mustTemplate(t, "runtrust", []string{testdata("values-minimal.yaml")}, "sensor.enabled=true"))
	dep, ds := m.deployments["rt-runtrust-controller"], m.daemonSets["rt-runtrust-sensor"]
	if dep == nil || ds == nil {
		t.Fatalf("no controller or sensor in %v", m.kinds)
	}
	ctrl, sensor := envOf(dep.Spec.Template.Spec.Containers[0]), envOf(ds.Spec.Template.Spec.Containers[0])
	for name, env := range map[string]map[string]corev1.EnvVar{"controller": ctrl, "sensor": sensor} {
		if k := env["RUNTRUST_JOIN_KEY"].ValueFrom; k == nil || k.SecretKeyRef == nil || k.SecretKeyRef.Key != "join-key" || k.SecretKeyRef.Name != "rt-runtrust-auth" {
			t.Errorf("%s: RUNTRUST_JOIN_KEY = %+v; want the auth Secret's join-key", name, env["RUNTRUST_JOIN_KEY"])
		}
		if got := env["RUNTRUST_CLUSTER_UID"].Value; got != "6a0c1f7e-0000-4000-8000-000000000001" {
			t.Errorf("%s: RUNTRUST_CLUSTER_UID = %q; want values-minimal.yaml's clusterUID", name, got)
		}
		if _, ok := env["RUNTRUST_CLUSTER_TOKEN"]; ok {
			t.Errorf("%s: a cluster token env with a join key", name)
		}
		if _, ok := env["RUNTRUST_MODE"]; ok {
			t.Errorf("%s: RUNTRUST_MODE = %q; with a join key each collector reports what it runs", name, env["RUNTRUST_MODE"].Value)
		}
	}
	if got := ctrl["RUNTRUST_COLLECTOR_ID"].Value; got != "controller" {
		t.Errorf("controller RUNTRUST_COLLECTOR_ID = %q; want controller", got)
	}
	if f := sensor["K8S_NODE_NAME"].ValueFrom; f == nil || f.FieldRef == nil || f.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("sensor K8S_NODE_NAME = %+v; want the downward API's spec.nodeName", sensor["K8S_NODE_NAME"])
	}
	if !strings.Contains(m.configMaps["rt-runtrust-sensor"].Data["config.yaml"], "collector_id: ${env:K8S_NODE_NAME}") {
		t.Error("the sensor's config does not take its collector id from K8S_NODE_NAME")
	}

	m = decodeManifests(t, mustTemplate(t, "runtrust", []string{testdata("values-minimal.yaml")}, "auth.joinKey=", "auth.token=rtc_test", "sensor.enabled=true"))
	ctrl = envOf(m.deployments["rt-runtrust-controller"].Spec.Template.Spec.Containers[0])
	if _, ok := ctrl["RUNTRUST_JOIN_KEY"]; ok || ctrl["RUNTRUST_MODE"].Value != "impact" || ctrl["RUNTRUST_CLUSTER_TOKEN"].ValueFrom == nil {
		t.Errorf("controller env with a shared token: %+v", ctrl)
	}
}

// TestSensorDaemonSetPrivileges: the sensor gets host PID, exactly the capabilities the programs need, no
// privileged mode, read-only host paths (the queue directory alone writable), and stays off nodes labelled
// with the opt-out label.
func TestSensorDaemonSetPrivileges(t *testing.T) {
	for _, c := range []struct {
		values, label, tracefs string
	}{
		{"values-full.yaml", "corp.example/runtrust-sensor", "/sys/kernel/debug/tracing"},
		{"values-minimal.yaml", "runtrust.io/sensor", "/sys/kernel/tracing"},
	} {
		t.Run(c.values, func(t *testing.T) {
			sets := []string{"sensor.enabled=true"}
			if c.values == "values-minimal.yaml" {
				sets = append(sets, "auth.joinKey=", "auth.token=rtc_test")
			}
			m := decodeManifests(t, mustTemplate(t, "runtrust", []string{testdata(c.values)}, sets...))
			ds := m.daemonSets["rt-runtrust-sensor"]
			if ds == nil {
				t.Fatalf("no sensor DaemonSet in %v", m.kinds)
			}
			pod := ds.Spec.Template.Spec
			if !pod.HostPID {
				t.Error("hostPID is not set: the sensor cannot see the host's processes")
			}
			if pod.HostNetwork || pod.HostIPC {
				t.Errorf("hostNetwork %v, hostIPC %v: the sensor needs neither", pod.HostNetwork, pod.HostIPC)
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers", len(pod.Containers))
			}
			sc := pod.Containers[0].SecurityContext
			if sc == nil || sc.Capabilities == nil {
				t.Fatal("no container securityContext with capabilities")
			}
			if sc.Privileged == nil || *sc.Privileged {
				t.Error("privileged is not explicitly false")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Error("allowPrivilegeEscalation is not false")
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Error("the root filesystem is writable")
			}
			if !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("drop = %v, want [ALL]", sc.Capabilities.Drop)
			}
			if got := capNames(sc.Capabilities.Add); !reflect.DeepEqual(got, sensorCaps) {
				t.Errorf("added capabilities %v, want exactly %v", got, sensorCaps)
			}

			// Host paths: what each is, where it goes, and that only the queue is writable.
			mounts := map[string]corev1.VolumeMount{}
			for _, vm := range pod.Containers[0].VolumeMounts {
				mounts[vm.Name] = vm
			}
			hostPaths := map[string]string{}
			for _, v := range pod.Volumes {
				if v.HostPath == nil {
					continue
				}
				hostPaths[v.Name] = v.HostPath.Path
				vm, ok := mounts[v.Name]
				if !ok {
					t.Errorf("hostPath volume %s is not mounted", v.Name)
				}
				if writable := !vm.ReadOnly; writable != (v.Name == "queue") {
					t.Errorf("hostPath %s (%s) mounted read-only=%v", v.Name, v.HostPath.Path, vm.ReadOnly)
				}
			}
			wantHost := map[string]string{"queue": "", "tracefs": c.tracefs, "cgroup": "/sys/fs/cgroup"}
			for name, path := range wantHost {
				got, ok := hostPaths[name]
				if !ok || (path != "" && got != path) {
					t.Errorf("hostPath %s = %q, want %q", name, got, path)
				}
			}
			if len(hostPaths) != len(wantHost) {
				t.Errorf("host paths %v, want only %v", hostPaths, wantHost)
			}
			if mounts["tracefs"].MountPath != "/sys/kernel/tracing" {
				t.Errorf("tracefs mounted at %s, the sensor looks at /sys/kernel/tracing", mounts["tracefs"].MountPath)
			}

			// The opt-out label: a required node affinity term that excludes <label>=disabled.
			aff := pod.Affinity
			if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
				t.Fatal("no required node affinity")
			}
			terms := aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
			if len(terms) != 1 {
				t.Fatalf("%d node selector terms; the opt-out must be in the only one (terms are ORed)", len(terms))
			}
			found := false
			for _, e := range terms[0].MatchExpressions {
				if e.Key == c.label && e.Operator == corev1.NodeSelectorOpNotIn && slices.Equal(e.Values, []string{"disabled"}) {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s NotIn [disabled] expression: %+v", c.label, terms[0].MatchExpressions)
			}
		})
	}
}

// sensorCaps is the sensor's capability set (sorted); the sensor capability test runs the collector with it.
var sensorCaps = []string{"BPF", "DAC_READ_SEARCH", "PERFMON", "SYS_PTRACE"}

func capNames(cs []corev1.Capability) []string {
	var out []string
	for _, c := range cs {
		out = append(out, string(c))
	}
	slices.Sort(out)
	return out
}

// TestControllerDeploymentLeastPrivilege: the controller runs as non-root with no capabilities, a read-only root
// filesystem and no host access; its queue is on the persistent volume.
func TestControllerDeploymentLeastPrivilege(t *testing.T) {
	m := decodeManifests(t, mustTemplate(t, "runtrust", []string{testdata("values-full.yaml")}))
	d := m.deployments["rt-runtrust-controller"]
	if d == nil {
		t.Fatalf("no controller Deployment in %v", m.kinds)
	}
	pod := d.Spec.Template.Spec
	if pod.HostPID || pod.HostNetwork || pod.HostIPC {
		t.Error("the controller shares a host namespace")
	}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("the controller mounts host path %s", v.HostPath.Path)
		}
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("runAsNonRoot is not set")
	}
	sc := pod.Containers[0].SecurityContext
	if sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Add) != 0 || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities %+v, want drop [ALL], add none", sc)
	}
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != "Recreate" {
		t.Errorf("replicas %d, strategy %s: one controller per cluster, recreated (one volume)", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	var queue *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == "queue" {
			queue = &pod.Volumes[i]
		}
	}
	if queue == nil || queue.PersistentVolumeClaim == nil {
		t.Errorf("the queue volume is not the PVC: %+v", queue)
	}
	// The sensor's RBAC: pods list/watch, nothing else.
	role := m.clusterRoles["rt-runtrust-sensor"]
	want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}}}
	if role == nil || !reflect.DeepEqual(role.Rules, want) {
		t.Errorf("sensor ClusterRole %+v, want %+v", role, want)
	}
}
