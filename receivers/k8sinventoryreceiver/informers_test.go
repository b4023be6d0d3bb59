package k8sinventoryreceiver

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/runtrust/runtrust/internal/kubetest"
)

// TestListInPages lists 7 pods of a real kube-apiserver in pages of 3: three requests at the latest
// resourceVersion, each continuing the last, whatever the caller asked; every pod comes back as its cache
// entry, and the list carries the snapshot's resourceVersion. A transform error ends the list.
func TestListInPages(t *testing.T) {
	c := kubetest.Start(t)
	admin := c.Client(t)
	ctx := context.Background()
	_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "paged"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	var want []string
	for i := range 7 {
		p := pod("paged", fmt.Sprintf("p-%d", i), "", "node-1", nil, "ghcr.io/acme/app:1")
		p.UID = ""
		_, err := admin.CoreV1().Pods("paged").Create(ctx, p, metav1.CreateOptions{})
		require.NoError(t, err)
		want = append(want, fmt.Sprintf("p-%d", i))
	}

	var asked []metav1.ListOptions
	list := func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		asked = append(asked, o)
		return admin.CoreV1().Pods("paged").List(ctx, o)
	}
	out, err := listInPages(ctx, metav1.ListOptions{ResourceVersion: "0", LabelSelector: "app"}, 3, list, trim)
	require.NoError(t, err)
	require.Len(t, asked, 3)
	for i, o := range asked {
		assert.Empty(t, o.ResourceVersion, "request %d", i)
		assert.EqualValues(t, 3, o.Limit, "request %d", i)
		assert.Equal(t, "app", o.LabelSelector, "request %d: the caller's selector is kept", i)
		assert.Equal(t, i > 0, o.Continue != "", "request %d continues the last", i)
	}
	var got []string
	for _, o := range out.Items {
		e, ok := o.(*podEntry)
		require.True(t, ok, "a %T, not a cache entry", o)
		assert.Equal(t, "ghcr.io/acme/app:1", e.containers[0].image)
		got = append(got, e.Name)
	}
	assert.ElementsMatch(t, want, got)
	last, err := admin.CoreV1().Pods("paged").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Equal(t, last.ResourceVersion, out.ResourceVersion, "nothing changed since: the same snapshot")

	untrimmed, err := listInPages(ctx, metav1.ListOptions{}, 3, list, nil)
	require.NoError(t, err)
	require.Len(t, untrimmed.Items, 7)
	assert.IsType(t, &corev1.Pod{}, untrimmed.Items[0], "without a transform the API objects are kept")

	bad := errors.New("cannot trim")
	_, err = listInPages(ctx, metav1.ListOptions{}, 3, list, func(any) (any, error) { return nil, bad })
	require.ErrorIs(t, err, bad)
	_, err = listInPages(ctx, metav1.ListOptions{}, 3, list, func(any) (any, error) { return "not an object", nil })
	require.ErrorContains(t, err, "not a runtime.Object")
}
