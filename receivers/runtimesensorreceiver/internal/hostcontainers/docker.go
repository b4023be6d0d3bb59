package hostcontainers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/runtrust/runtrust/internal/imageref"
)

// Docker asks a Docker Engine (or Podman's Docker-compatible service, which answers the same two calls) over
// its HTTP API at a Unix socket: GET /containers/{id}/json for the image a container was created from, then
// GET /images/{image id}/json for the repository digests that image was pulled as.
type Docker struct {
	socket string
	client *http.Client
}

// maxDockerAnswer bounds what is read of one answer: a container's inspect document is a few KiB (its
// environment and labels included); more is not an answer to these calls.
const maxDockerAnswer = 4 << 20

// NewDocker prepares a client for the engine at socket. It does not connect: the engine may start later.
func NewDocker(socket string) *Docker {
	dial := &net.Dialer{Timeout: 2 * time.Second}
	return &Docker{socket: socket, client: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dial.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns: 2, IdleConnTimeout: 30 * time.Second,
	}}}
}

// Close drops idle connections.
func (d *Docker) Close() error {
	d.client.CloseIdleConnections()
	return nil
}

// Lookup returns the image container id runs: the reference it was created from and the repository digest of
// that reference's repository among those the image was pulled as. ErrNotFound when the engine has no such
// container. An image built or loaded on the host has no repository digest: Digest is then "".
func (d *Docker) Lookup(ctx context.Context, id string) (Image, error) {
	body, err := d.get(ctx, "/containers/"+url.PathEscape(id)+"/json")
	if err != nil {
		return Image{}, err
	}
	name, imageID, err := DecodeDockerContainer(body)
	if err != nil {
		return Image{}, fmt.Errorf("docker at %s: container %s: %w", d.socket, id, err)
	}
	img := Image{Name: name}
	if ref, err := imageref.Parse(name); err == nil && ref.HasDigest() {
		img.Digest = ref.Digest // created from a pinned reference: that is what runs
		return img, nil
	}
	body, err = d.get(ctx, "/images/"+url.PathEscape(imageID)+"/json")
	if errors.Is(err, ErrNotFound) {
		return img, nil // the image was removed while the container runs: its name is all there is
	}
	if err != nil {
		return Image{}, err
	}
	repoDigests, err := DecodeDockerImage(body)
	if err != nil {
		return Image{}, fmt.Errorf("docker at %s: image %s: %w", d.socket, imageID, err)
	}
	img.Digest = RepoDigestFor(name, repoDigests)
	return img, nil
}

func (d *Docker) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker at %s: %w", d.socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDockerAnswer+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("docker at %s: reading %s: %w", d.socket, path, err)
	case len(body) > maxDockerAnswer:
		return nil, fmt.Errorf("docker at %s: %s answered more than %d bytes", d.socket, path, maxDockerAnswer)
	case resp.StatusCode == http.StatusNotFound:
		return nil, ErrNotFound
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("docker at %s: %s: %s: %s", d.socket, path, resp.Status, dockerMessage(body))
	}
	return body, nil
}

// dockerMessage is the engine's error message ({"message": "…"}), or the start of the body.
func dockerMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return e.Message
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return strings.TrimSpace(string(body))
}

// DecodeDockerContainer reads a container inspect answer: the reference the container was created from
// (Config.Image) and the id of the image it runs (Image).
func DecodeDockerContainer(body []byte) (name, imageID string, err error) {
	var c struct {
		Image  string `json:"Image"`
		Config *struct {
			Image string `json:"Image"`
		} `json:"Config"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return "", "", fmt.Errorf("the inspect answer is not a container: %w", err)
	}
	if c.Config == nil || c.Config.Image == "" {
		return "", "", errors.New("the inspect answer names no image (Config.Image)")
	}
	if c.Image == "" {
		return "", "", errors.New("the inspect answer has no image id (Image)")
	}
	return c.Config.Image, c.Image, nil
}

// DecodeDockerImage reads an image inspect answer: the repository digests (repo@sha256:…) the image was pulled
// as. An image built or loaded on the host has none.
func DecodeDockerImage(body []byte) ([]string, error) {
	var img struct {
		ID          string   `json:"Id"`
		RepoDigests []string `json:"RepoDigests"`
	}
	if err := json.Unmarshal(body, &img); err != nil {
		return nil, fmt.Errorf("the inspect answer is not an image: %w", err)
	}
	if img.ID == "" {
		return nil, errors.New("the inspect answer has no image id (Id)")
	}
	return img.RepoDigests, nil
}

// RepoDigestFor picks, among the repository digests an image was pulled as, the one of name's repository (an
// image pulled under several names has one per repository), comparing normalized names: "nginx" is
// docker.io/library/nginx. "" when none is of that repository, or name is not a reference.
func RepoDigestFor(name string, repoDigests []string) string {
	want, err := imageref.Parse(name)
	if err != nil {
		return ""
	}
	for _, rd := range repoDigests {
		got, err := imageref.Parse(rd)
		if err == nil && got.HasDigest() && got.Registry == want.Registry && got.Repository == want.Repository {
			return got.Digest
		}
	}
	return ""
}
