package runtimesensorreceiver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runtrust/runtrust/internal/k8sconfig"
	"github.com/runtrust/runtrust/internal/kubetest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/internal/sbomtest"
)

// TestAttributionOnARealNode: a pod the kubelet really runs (containerd's CRI, cgroupfs driver, the cgroups as
// the kubelet names them), a shell exec'd into it through the API as `kubectl exec` does, and the sensor, with
// its pod watch on the node, attributes that exec to the container, the pod, its namespace and its uid.
func TestAttributionOnARealNode(t *testing.T) {
	reg := registrytest.Start(t)
	n := kubetest.StartNode(t, kubetest.NodeOptions{Registry: reg.Host})
	_, sink := startSensor(t, func(cfg *Config) {
		cfg.NodeName = n.Name
		cfg.Kubernetes.Enabled = true
		cfg.Kubernetes.AuthType = k8sconfig.AuthKubeConfig
		cfg.Kubernetes.KubeConfig = n.Kubeconfig
	})
	spec, shSum := sbomtest.ShellSpec(t)
	ref, _ := sbomtest.Push(t, reg.Host, "shop/toolbox:1", sbomtest.Image(t, spec))
	_, err := n.Client(t).CoreV1().Pods("default").Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "toolbox", Labels: map[string]string{"app": "toolbox"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "toolbox", Image: ref}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod := n.WaitRunning(t, "default", "app=toolbox", 3*time.Minute)
	require.Len(t, pod.Status.ContainerStatuses, 1)
	cid := strings.TrimPrefix(pod.Status.ContainerStatuses[0].ContainerID, "containerd://")

	n.Exec(t, "default", pod.Name, "toolbox", "/bin/sh", "-c", "exit 0")
	lr := waitRecords(t, sink, func(lr plog.LogRecord) bool {
		return lr.EventName() == records.EventProcessExec && strAttr(lr, records.AttrContainerID) == cid &&
			strAttr(lr, records.AttrProcessExecutablePath) == "/bin/sh"
	})[0]
	assert.Equal(t, string(pod.UID), strAttr(lr, records.AttrK8sPodUID))
	assert.Equal(t, pod.Name, strAttr(lr, records.AttrK8sPodName))
	assert.Equal(t, "default", strAttr(lr, records.AttrK8sNamespaceName))
	assert.Contains(t, strAttr(lr, records.AttrCgroupPath), "/pod"+string(pod.UID)+"/"+cid,
		"the cgroup the kubelet made (cgroupfs: kubepods/<qos>/pod<uid>/<container id>)")
	assert.Equal(t, shSum, strAttr(lr, records.AttrProcessExecutableSHA256), "the shell hashed through the container's root is the image's /bin/sh")
}
