package runtimesensorreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

func TestInformerPods(t *testing.T) {
	pod := func(name, node, cid string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("uid-" + name)},
			Spec:       corev1.PodSpec{NodeName: node},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", ContainerID: "containerd://" + cid},
			}},
		}
	}
	other := "1111111111111111111111111111111111111111111111111111111111111111"
	client := fake.NewClientset(pod("web", "node-a", cid), pod("db", "node-b", other))
	p := newInformerPods(client, "node-a")
	require.NoError(t, p.Start(context.Background()))
	defer p.Shutdown()
	require.Eventually(t, func() bool { _, ok := p.PodFor(cid); return ok }, 10*time.Second, 10*time.Millisecond)
	got, _ := p.PodFor(cid)
	assert.Equal(t, Pod{Name: "web", Namespace: "shop", UID: "uid-web"}, got)
	// The fake clientset ignores field selectors, so the other node's pod is indexed too here; the real API
	// server filters by spec.nodeName.
	require.NoError(t, client.CoreV1().Pods("shop").Delete(context.Background(), "web", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { _, ok := p.PodFor(cid); return !ok }, 10*time.Second, 10*time.Millisecond)
}

func TestContainerIDFromStatus(t *testing.T) {
	assert.Equal(t, cid, containerIDFromStatus("containerd://"+cid))
	assert.Equal(t, cid, containerIDFromStatus("cri-o://"+cid))
	assert.Equal(t, cid, containerIDFromStatus(cid))
	assert.Equal(t, "", containerIDFromStatus(""))
}

// fakePods is a PodLookup for attribution tests.
type fakePods map[string]Pod

func (fakePods) Start(context.Context) error    { return nil }
func (f fakePods) PodFor(id string) (Pod, bool) { p, ok := f[id]; return p, ok }
func (fakePods) Shutdown()                      {}

func TestAttributionWithPods(t *testing.T) {
	r := &sensorReceiver{pods: fakePods{cid: {Name: "web", Namespace: "shop", UID: puid}}, attrs: map[cgroupTails]attribution{}}
	a := r.attribute("/kubepods-pod"+"x.slice/cri-containerd-"+cid+".scope", "")
	assert.False(t, a.host)
	assert.Equal(t, cid, a.c.ID)
	h := r.attribute("/user.slice/session-1.scope", "/process_api/abc")
	assert.True(t, h.host)
}
