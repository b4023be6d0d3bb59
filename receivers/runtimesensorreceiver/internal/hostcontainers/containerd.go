// Package hostcontainers asks the container runtime on this host which image a container runs, for containers
// that are in no Kubernetes pod (a host's own containerd, nerdctl, ctr, Docker, Podman): the sensor sees their
// processes by cgroup, but only the runtime knows the image. containerd is asked here; Docker and Podman in
// docker.go.
//
// containerd is asked over its gRPC API (containerd.services.*.v1, stable since containerd 1.0). The few
// messages needed are encoded and decoded here with protowire rather than through containerd's Go client,
// whose module graph would pin the collector's gRPC and OpenTelemetry versions.
package hostcontainers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/runtrust/runtrust/internal/grpcraw"
)

// Image is what the runtime says a container runs.
type Image struct {
	// Name is the image reference the container was created from (registry.example/app:1.2).
	Name string
	// Digest is the manifest (or index) digest the runtime resolved Name to when it pulled it: sha256:<hex>.
	Digest string
	// Namespace is the containerd namespace holding the container.
	Namespace string
}

// ErrNotFound says no namespace of the runtime holds the container.
var ErrNotFound = errors.New("no such container")

const (
	methodListNamespaces = "/containerd.services.namespaces.v1.Namespaces/List"
	methodGetContainer   = "/containerd.services.containers.v1.Containers/Get"
	methodGetImage       = "/containerd.services.images.v1.Images/Get"
	// namespaceHeader is the gRPC metadata containerd reads the namespace of a call from.
	namespaceHeader = "containerd-namespace"
	// namespacesTTL bounds how long a namespace list is used before it is asked again.
	namespacesTTL = 30 * time.Second
)

// Containerd asks one containerd daemon, at a Unix socket.
type Containerd struct {
	socket string
	conn   *grpc.ClientConn

	mu         sync.Mutex
	namespaces []string
	listedAt   time.Time
}

// NewContainerd prepares a client for the daemon at socket. It does not connect: the daemon may start later,
// and each Lookup dials as needed.
func NewContainerd(socket string) (*Containerd, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %w", socket, err)
	}
	return &Containerd{socket: socket, conn: conn}, nil
}

// Close closes the connection.
func (c *Containerd) Close() error { return c.conn.Close() }

// Lookup finds the container with id in any namespace and the image it was created from.
func (c *Containerd) Lookup(ctx context.Context, id string) (Image, error) {
	namespaces, err := c.listNamespaces(ctx)
	if err != nil {
		return Image{}, err
	}
	for _, ns := range namespaces {
		nctx := metadata.AppendToOutgoingContext(ctx, namespaceHeader, ns)
		var resp grpcraw.Message
		err := c.conn.Invoke(nctx, methodGetContainer, &grpcraw.Message{B: encodeString(1, id)}, &resp, grpc.ForceCodecV2(grpcraw.Codec{}))
		if status.Code(err) == codes.NotFound {
			continue
		}
		if err != nil {
			return Image{}, fmt.Errorf("containerd at %s: get container %s in namespace %s: %w", c.socket, id, ns, err)
		}
		name, err := DecodeContainerImage(resp.B)
		if err != nil {
			return Image{}, fmt.Errorf("containerd at %s: container %s: %w", c.socket, id, err)
		}
		img := Image{Name: name, Namespace: ns}
		if name == "" {
			return img, nil // created from no image (a bare rootfs): nothing more to ask
		}
		resp = grpcraw.Message{}
		err = c.conn.Invoke(nctx, methodGetImage, &grpcraw.Message{B: encodeString(1, name)}, &resp, grpc.ForceCodecV2(grpcraw.Codec{}))
		if status.Code(err) == codes.NotFound {
			return img, nil // the image was removed after the container was made
		}
		if err != nil {
			return Image{}, fmt.Errorf("containerd at %s: get image %s in namespace %s: %w", c.socket, name, ns, err)
		}
		if img.Digest, err = DecodeImageDigest(resp.B); err != nil {
			return Image{}, fmt.Errorf("containerd at %s: image %s: %w", c.socket, name, err)
		}
		return img, nil
	}
	return Image{}, ErrNotFound
}

func (c *Containerd) listNamespaces(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.namespaces != nil && time.Since(c.listedAt) < namespacesTTL {
		return c.namespaces, nil
	}
	var resp grpcraw.Message
	if err := c.conn.Invoke(ctx, methodListNamespaces, &grpcraw.Message{}, &resp, grpc.ForceCodecV2(grpcraw.Codec{})); err != nil {
		return nil, fmt.Errorf("containerd at %s: list namespaces: %w", c.socket, err)
	}
	ns, err := DecodeNamespaces(resp.B)
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %w", c.socket, err)
	}
	c.namespaces, c.listedAt = ns, time.Now()
	return ns, nil
}
