package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// hostContainer is a runtrust.host.container as ingest stores it: no pod, no namespace, named by its id.
func hostContainer(id byte, digestOf string, at time.Time) store.Container {
	cid := strings.Repeat(string(id), 64)
	return store.Container{Name: cid, ContainerID: cid, NodeName: "laptop", ImageName: "app:1",
		ImageRef: "registry.example/app:1", RegistryHost: "registry.example", RunningDigest: digestOf,
		Integrity: records.IntegrityVerified, Severity: records.SeverityNone, Time: at}
}

// TestHostContainersCountAndExpire: a host container makes its image a running one (a container, no pod, no
// namespace); one its sensor described again stays, one no sensor described within HostContainerTTL is gone
// from the list at the next retention pass, and comes back when it is described again.
func TestHostContainersCountAndExpire(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s := storetest.Open(t, store.Options{Now: clk.Now})
	c := enrol(t, s, "local")
	kept, dropped := digest('k'), digest('d')
	if _, err := s.Apply(ctx, c, "b1", &store.Batch{Containers: []store.Container{
		hostContainer('1', kept, t0), hostContainer('2', dropped, t0),
		container("1a", "app", kept, records.SeverityNone, records.IntegrityVerified, t0),
	}}); err != nil {
		t.Fatal(err)
	}
	running := func() map[string]store.ImageSummary {
		t.Helper()
		page, err := s.ListImages(ctx, store.Filter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]store.ImageSummary{}
		for _, i := range page.Items {
			out[i.Digest] = i
		}
		return out
	}
	got := running()
	if k := got[kept]; k.Containers != 2 || k.Pods != 1 || k.Namespaces != 1 {
		t.Errorf("image of a pod's and a host's container: %d containers, %d pods, %d namespaces; want 2, 1, 1", k.Containers, k.Pods, k.Namespaces)
	}
	if d := got[dropped]; d.Containers != 1 || d.Pods != 0 || d.Namespaces != 0 {
		t.Errorf("image of a host container only: %d containers, %d pods, %d namespaces; want 1, 0, 0", d.Containers, d.Pods, d.Namespaces)
	}

	// 20 minutes on, container 1 is described again (a snapshot); 35 minutes on, container 2 has not been.
	at20 := t0.Add(20 * time.Minute)
	if _, err := s.Apply(ctx, c, "b2", &store.Batch{Containers: []store.Container{hostContainer('1', kept, at20)}}); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(35 * time.Minute))
	if n, err := s.ExpireHostContainers(ctx, store.HostContainerTTL); err != nil || n != 1 {
		t.Fatalf("expired %d (%v); want the one not described within %s", n, err, store.HostContainerTTL)
	}
	got = running()
	if _, listed := got[dropped]; listed {
		t.Errorf("the expired host container's image is still listed: %+v", got[dropped])
	}
	if k := got[kept]; k.Containers != 2 {
		t.Errorf("the described host container was expired too: %+v", k)
	}
	if n, err := s.ExpireHostContainers(ctx, store.HostContainerTTL); err != nil || n != 0 {
		t.Fatalf("a second pass expired %d (%v); want none", n, err)
	}
	// The pod's container is the inventory's: never expired here, however old.
	clk.Set(t0.Add(24 * time.Hour))
	if _, err := s.ExpireHostContainers(ctx, store.HostContainerTTL); err != nil {
		t.Fatal(err)
	}
	if k := running()[kept]; k.Containers != 1 || k.Pods != 1 {
		t.Errorf("after a day: %+v; want the pod's container only", k)
	}
	// Described again: listed again.
	if _, err := s.Apply(ctx, c, "b3", &store.Batch{Containers: []store.Container{hostContainer('2', dropped, clk.Now())}}); err != nil {
		t.Fatal(err)
	}
	if d := running()[dropped]; d.Containers != 1 {
		t.Errorf("a host container described again after it expired: %+v", d)
	}
}
