package hostcontainers_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/hostcontainers"
	"github.com/runtrust/runtrust/testbed"
)

// TestContainerdLookup asks a real containerd (the testbed's: Debian's containerd and runc) about a container
// it runs outside any pod: the image name it was created from and the digest that name was pulled as, which is
// the manifest digest the loopback registry serves.
func TestContainerdLookup(t *testing.T) {
	reg := registrytest.Start(t)
	img := testbed.PushShellImage(t, reg.Host, "host/toolbox:1")
	ctd := testbed.StartContainerd(t)
	ctd.Pull(t, img.Ref)
	id := ctd.Run(t, img.Ref, "/rt-hostcontainers-test.slice", "/bin/sleep", "600")

	c, err := hostcontainers.NewContainerd(ctd.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := c.Lookup(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := hostcontainers.Image{Name: img.Ref, Digest: img.Digest, Namespace: "runtrust"}
	if got != want {
		t.Errorf("Lookup(%s) = %+v, want %+v", id, got, want)
	}
	if _, err := c.Lookup(ctx, strings.Repeat("0", 64)); !errors.Is(err, hostcontainers.ErrNotFound) {
		t.Errorf("an unknown container: %v, want ErrNotFound", err)
	}

	gone, err := hostcontainers.NewContainerd(filepath.Join(t.TempDir(), "no.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	short, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if _, err := gone.Lookup(short, id); err == nil || !strings.Contains(err.Error(), "no.sock") {
		t.Errorf("no daemon at the socket: %v, want an error naming the socket", err)
	}
}

// TestDockerLookup asks a real Docker Engine (the testbed's: Debian's docker.io) about a container `docker run`
// started: the reference it was created from and the repository digest that reference was pulled as, which is
// the manifest digest the loopback registry serves; then a container of the same image run by digest.
func TestDockerLookup(t *testing.T) {
	reg := registrytest.Start(t)
	img := testbed.PushShellImage(t, reg.Host, "host/toolbox:1")
	dk := testbed.StartDocker(t)
	dk.Pull(t, img.Ref)
	byTag := dk.Run(t, img.Ref, "/bin/sleep", "600")
	pinned := reg.Host + "/host/toolbox@" + img.Digest
	byDigest := dk.Run(t, pinned, "/bin/sleep", "600")

	d := hostcontainers.NewDocker(dk.Socket)
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for id, want := range map[string]hostcontainers.Image{
		byTag:    {Name: img.Ref, Digest: img.Digest},
		byDigest: {Name: pinned, Digest: img.Digest},
	} {
		got, err := d.Lookup(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("Lookup(%s) = %+v, want %+v", id, got, want)
		}
	}
	if _, err := d.Lookup(ctx, strings.Repeat("0", 64)); !errors.Is(err, hostcontainers.ErrNotFound) {
		t.Errorf("an unknown container: %v, want ErrNotFound", err)
	}
	gone := hostcontainers.NewDocker(filepath.Join(t.TempDir(), "no.sock"))
	if _, err := gone.Lookup(ctx, byTag); err == nil || !strings.Contains(err.Error(), "no.sock") {
		t.Errorf("no engine at the socket: %v, want an error naming the socket", err)
	}
}

// TestPodmanLookup asks a real Podman (the testbed's: Debian's podman, its API service) through the same
// Docker-compatible calls: the reference a `podman run` container was created from and the repository digest
// it was pulled as.
func TestPodmanLookup(t *testing.T) {
	reg := registrytest.Start(t)
	img := testbed.PushShellImage(t, reg.Host, "host/toolbox:1")
	pm := testbed.StartPodman(t)
	pm.Pull(t, img.Ref)
	id := pm.Run(t, img.Ref, "/bin/sleep", "600")

	d := hostcontainers.NewDocker(pm.Socket)
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := d.Lookup(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := (hostcontainers.Image{Name: img.Ref, Digest: img.Digest}); got != want {
		t.Errorf("Lookup(%s) = %+v, want %+v", id, got, want)
	}
	if _, err := d.Lookup(ctx, strings.Repeat("0", 64)); !errors.Is(err, hostcontainers.ErrNotFound) {
		t.Errorf("an unknown container: %v, want ErrNotFound", err)
	}
}
