package k8sinventoryreceiver

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/receivers/k8sinventoryreceiver/internal/metadata"
)

const (
	sha1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	sha2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	sha3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

// rec is a log record reduced to what tests compare.
type rec struct {
	Event    string
	Change   string
	Body     string
	Attrs    map[string]any
	Resource map[string]any
}

func (r rec) String() string { return r.Event + " " + r.Change + " " + r.Body }

// sinkRecords flattens everything the sink received, in order.
func sinkRecords(sink *consumertest.LogsSink) []rec {
	var out []rec
	for _, ld := range sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			res := rl.Resource().Attributes().AsRaw()
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, toRec(lrs.At(k), res))
				}
			}
		}
	}
	return out
}

func toRec(lr plog.LogRecord, res map[string]any) rec {
	attrs := lr.Attributes().AsRaw()
	change, _ := attrs[records.AttrK8sChange].(string)
	return rec{Event: lr.EventName(), Change: change, Body: lr.Body().Str(), Attrs: attrs, Resource: res}
}

// waitRecords polls until the sink holds at least n records (generous deadline: the machine is shared) and
// returns them.
func waitRecords(t *testing.T, sink *consumertest.LogsSink, n int) []rec {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := sinkRecords(sink)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d records, got %d:\n%s", n, len(got), bodies(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// next returns the records that arrived after the first `seen`, waiting until there are n of them.
func next(t *testing.T, sink *consumertest.LogsSink, seen *int, n int) []rec {
	t.Helper()
	all := waitRecords(t, sink, *seen+n)
	out := all[*seen:]
	*seen = len(all)
	return out
}

func bodies(rs []rec) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  %s\n", r.Body)
	}
	return b.String()
}

func bodyList(rs []rec) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Body
	}
	return out
}

func sortedBodies(rs []rec) []string {
	out := bodyList(rs)
	sort.Strings(out)
	return out
}

// startReceiver starts a receiver on client and waits for its first snapshot.
func startReceiver(t *testing.T, cfg *Config, client kubernetes.Interface, next consumer.Logs) *inventoryReceiver {
	t.Helper()
	return startReceiverWith(t, receivertest.NewNopSettings(metadata.Type), cfg, client, next)
}

// startReceiverWith is startReceiver with the given settings (a test telemetry, say).
func startReceiverWith(t *testing.T, set receiver.Settings, cfg *Config, client kubernetes.Interface, next consumer.Logs) *inventoryReceiver {
	t.Helper()
	if client != nil {
		cfg.makeClient = func() (kubernetes.Interface, error) { return client, nil }
	}
	r, err := newReceiver(set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	select {
	case <-r.firstSnapshot:
	case <-time.After(120 * time.Second):
		t.Fatal("no first snapshot within 120s")
	}
	return r
}

func testConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.ClusterName = "test-cluster"
	cfg.SnapshotInterval = 0
	return cfg
}

// Objects as the controllers and the kubelet would write them.

func ctrl(kind, name, uid string) []metav1.OwnerReference {
	t := true
	api := "apps/v1"
	if kind == kindJob || kind == kindCronJob {
		api = "batch/v1"
	}
	return []metav1.OwnerReference{{APIVersion: api, Kind: kind, Name: name, UID: types.UID(uid), Controller: &t}}
}

func meta(ns, name, uid string, owners []metav1.OwnerReference) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), OwnerReferences: owners,
		Labels:        map[string]string{"app": name},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}}
}

func template(images ...string) corev1.PodTemplateSpec {
	var t corev1.PodTemplateSpec
	for i, img := range images {
		t.Spec.Containers = append(t.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img,
			Command: []string{"/bin/sh", "-c", "sleep infinity"}})
	}
	return t
}

func deployment(ns, name, uid string, images ...string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: meta(ns, name, uid, nil), Spec: appsv1.DeploymentSpec{Template: template(images...)}}
}

func replicaSet(ns, name, uid string, owners []metav1.OwnerReference, images ...string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: meta(ns, name, uid, owners), Spec: appsv1.ReplicaSetSpec{Template: template(images...)}}
}

func job(ns, name, uid string, owners []metav1.OwnerReference, images ...string) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: meta(ns, name, uid, owners), Spec: batchv1.JobSpec{Template: template(images...)}}
}

func cronJob(ns, name, uid string, images ...string) *batchv1.CronJob {
	cj := &batchv1.CronJob{ObjectMeta: meta(ns, name, uid, nil)}
	cj.Spec.Schedule = "*/5 * * * *"
	cj.Spec.JobTemplate.Spec.Template = template(images...)
	return cj
}

func node(name, uid, kubelet string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(uid)},
		Status: corev1.NodeStatus{
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: kubelet, ContainerRuntimeVersion: "containerd://1.7.24",
				OSImage: "Debian GNU/Linux 12 (bookworm)", Architecture: "amd64"},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
				LastHeartbeatTime: metav1.Now()}},
		}}
}

// pod returns a pending pod with one regular container per image.
func pod(ns, name, uid, nodeName string, owners []metav1.OwnerReference, images ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: meta(ns, name, uid, owners), Spec: template(images...).Spec}
	p.Spec.NodeName = nodeName
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].ImagePullPolicy = corev1.PullIfNotPresent
	}
	p.Status.Phase = corev1.PodPending
	return p
}

// running writes the status the kubelet writes once every container runs, with the given imageIDs.
func running(p *corev1.Pod, started time.Time, imageIDs ...string) *corev1.Pod {
	p = p.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	p.Status.ContainerStatuses = nil
	for i, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageIDs[i], Ready: true,
			ContainerID: fmt.Sprintf("containerd://%064x", i+1),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}},
		})
	}
	return p
}

func statefulSetObj(ns, name, uid string, images ...string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: meta(ns, name, uid, nil), Spec: appsv1.StatefulSetSpec{Template: template(images...)}}
}

func daemonSetObj(ns, name, uid string, images ...string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: meta(ns, name, uid, nil), Spec: appsv1.DaemonSetSpec{Template: template(images...)}}
}

func str(v any) string { s, _ := v.(string); return s }

func hex(i int) string { return fmt.Sprintf("%064x", i) }
