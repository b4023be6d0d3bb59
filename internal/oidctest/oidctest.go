// Package oidctest runs a real OpenID Connect provider for tests: hack/oidc-provider (zitadel/oidc's provider,
// its own module), built once per test process into Go's build cache and started on a loopback port with the
// client and users a test names. Sign-in goes through its real login form, discovery, token and userinfo
// endpoints, with PKCE and signed ID tokens.
package oidctest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// User is a user of the provider; they sign in with Username and Password.
type User struct {
	ID            string `json:"ID"`
	Username      string `json:"Username"`
	Password      string `json:"Password"`
	Email         string `json:"Email"`
	EmailVerified bool   `json:"EmailVerified"`
	FirstName     string `json:"FirstName"`
	LastName      string `json:"LastName"`
	Language      string `json:"PreferredLanguage"`
}

// Options is the one client and the users of a provider.
type Options struct {
	ClientID, ClientSecret string
	RedirectURIs           []string
	Users                  []User
}

// Provider is a running provider.
type Provider struct {
	// Issuer is its issuer URL, with the trailing slash it puts in its tokens.
	Issuer string
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds hack/oidc-provider once per test process.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		src := filepath.Join(repoRoot(t), "hack", "oidc-provider")
		dir, err := os.MkdirTemp("", "oidctest-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "oidc-provider")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the test OIDC provider in %s (go build needs the Go module proxy the first time): %v\n%s", src, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Start starts a provider for the test; it stops when the test ends.
func Start(t testing.TB, o Options) *Provider {
	t.Helper()
	bin := binary(t)
	users := map[string]User{}
	for _, u := range o.Users {
		if u.Language == "" {
			u.Language = "en"
		}
		users[u.ID] = u
	}
	b, err := json.Marshal(users)
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(usersFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-listen", "127.0.0.1:0", "-client-id", o.ClientID, "-client-secret", o.ClientSecret, "-users", usersFile}
	for _, r := range o.RedirectURIs {
		args = append(args, "-redirect-uri", r)
	}
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("OIDC provider's log:\n%s", stderr.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if issuer, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- issuer
			}
		}
	}()
	select {
	case issuer := <-ready:
		return &Provider{Issuer: issuer}
	case <-time.After(30 * time.Second):
		t.Fatalf("the OIDC provider did not say it was ready within 30 s: %s", stderr.String())
	}
	return nil
}

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "oidc-provider", "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no hack/oidc-provider above the test's directory")
		}
		dir = parent
	}
}
