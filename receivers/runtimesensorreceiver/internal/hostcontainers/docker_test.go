package hostcontainers_test

import (
	"strings"
	"testing"

	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/hostcontainers"
)

const dockerDigest = "sha256:" + "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"

func TestDecodeDockerContainer(t *testing.T) {
	for _, c := range []struct {
		name, body, wantName, wantID, wantErr string
	}{
		{"engine", `{"Id":"c1","Image":"sha256:9f","Config":{"Image":"nginx:1.25","Env":["A=b"]}}`, "nginx:1.25", "sha256:9f", ""},
		{"podman compat", `{"Id":"c1","Image":"9f","Config":{"Image":"quay.io/app/web:2"}}`, "quay.io/app/web:2", "9f", ""},
		{"no config", `{"Id":"c1","Image":"sha256:9f"}`, "", "", "names no image (Config.Image)"},
		{"empty image name", `{"Image":"sha256:9f","Config":{"Image":""}}`, "", "", "names no image"},
		{"no image id", `{"Config":{"Image":"nginx"}}`, "", "", "no image id (Image)"},
		{"not json", `<html>`, "", "", "not a container"},
		{"wrong type", `{"Image":1,"Config":{"Image":"nginx"}}`, "", "", "not a container"},
	} {
		t.Run(c.name, func(t *testing.T) {
			name, id, err := hostcontainers.DecodeDockerContainer([]byte(c.body))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil || name != c.wantName || id != c.wantID {
				t.Fatalf("got %q, %q, %v; want %q, %q", name, id, err, c.wantName, c.wantID)
			}
		})
	}
}

func TestDecodeDockerImage(t *testing.T) {
	got, err := hostcontainers.DecodeDockerImage([]byte(`{"Id":"sha256:9f","RepoTags":["nginx:1.25"],"RepoDigests":["nginx@` + dockerDigest + `"]}`))
	if err != nil || len(got) != 1 || got[0] != "nginx@"+dockerDigest {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := hostcontainers.DecodeDockerImage([]byte(`{"Id":"sha256:9f","RepoDigests":null}`)); err != nil || len(got) != 0 {
		t.Fatalf("a built image (no repository digest): %v, %v", got, err)
	}
	for body, want := range map[string]string{`{}`: "no image id (Id)", `[1]`: "not an image", ``: "not an image"} {
		if _, err := hostcontainers.DecodeDockerImage([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one saying %q", body, err, want)
		}
	}
}

func TestRepoDigestFor(t *testing.T) {
	other := "sha256:" + strings.Repeat("cd", 32)
	for _, c := range []struct {
		name        string
		ref         string
		repoDigests []string
		want        string
	}{
		{"short name", "nginx:1.25", []string{"docker.io/library/nginx@" + dockerDigest}, dockerDigest},
		{"short repo digest", "docker.io/library/nginx", []string{"nginx@" + dockerDigest}, dockerDigest},
		{"the name's repository among several", "registry.example:5000/app:1",
			[]string{"mirror.example/app@" + other, "registry.example:5000/app@" + dockerDigest}, dockerDigest},
		{"another repository only", "registry.example/app:1", []string{"mirror.example/app@" + other}, ""},
		{"none (built here)", "app:dev", nil, ""},
		{"bad entries skipped", "app:1", []string{"", "UPPER@x", "docker.io/library/app@" + dockerDigest}, dockerDigest},
		{"name not a reference", "Not A Ref", []string{"docker.io/library/app@" + dockerDigest}, ""},
	} {
		if got := hostcontainers.RepoDigestFor(c.ref, c.repoDigests); got != c.want {
			t.Errorf("%s: RepoDigestFor(%q, %v) = %q, want %q", c.name, c.ref, c.repoDigests, got, c.want)
		}
	}
}

// FuzzDecodeDocker: whatever an engine answers, the decoders return a value or an error, never panic, and a
// digest picked is one of the answer's own.
func FuzzDecodeDocker(f *testing.F) {
	f.Add([]byte(`{"Id":"c1","Image":"sha256:9f","Config":{"Image":"nginx:1.25"}}`), "nginx:1.25")
	f.Add([]byte(`{"Id":"sha256:9f","RepoDigests":["nginx@`+dockerDigest+`"]}`), "nginx")
	f.Add([]byte(`{"Config":null}`), "")
	f.Fuzz(func(t *testing.T, body []byte, name string) {
		_, _, _ = hostcontainers.DecodeDockerContainer(body)
		rds, err := hostcontainers.DecodeDockerImage(body)
		if err != nil {
			return
		}
		if d := hostcontainers.RepoDigestFor(name, rds); d != "" {
			for _, rd := range rds {
				if strings.HasSuffix(strings.ToLower(rd), "@"+d) {
					return
				}
			}
			t.Fatalf("digest %q is in none of %q", d, rds)
		}
	})
}
