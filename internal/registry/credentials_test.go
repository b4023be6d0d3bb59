package registry

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseCredentials(t *testing.T) {
	secret := func(key, inner string) string {
		return `{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/dockerconfigjson","data":{"` + key + `":"` + b64(inner) + `"}}`
	}
	tests := []struct {
		name    string
		in      string
		want    map[string]authn.AuthConfig // rule text → auth
		wantErr string
	}{
		{
			name: "docker config.json",
			in: `{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("user:pa:ss") + `"},
				"registry.corp:5000":{"username":"ci","password":"s3cret"},
				"ghcr.io/acme":{"identitytoken":"idtok"},
				"quay.io":{}},
				"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud"}}`,
			want: map[string]authn.AuthConfig{
				"docker.io":          {Username: "user", Password: "pa:ss"},
				"registry.corp:5000": {Username: "ci", Password: "s3cret"},
				"ghcr.io/acme":       {IdentityToken: "idtok"},
			},
		},
		{
			name: "kubelet key spellings",
			in: `{"auths":{"http://registry.corp:5000/":{"auth":"` + b64("a:b") + `"},"*.corp.example":{"auth":"` + b64("c:d") + `"},
				"registry-1.docker.io":{"registrytoken":"rt"}}}`,
			want: map[string]authn.AuthConfig{
				"registry.corp:5000": {Username: "a", Password: "b"},
				"*.corp.example":     {Username: "c", Password: "d"},
				"docker.io":          {RegistryToken: "rt"},
			},
		},
		{
			name: ".dockercfg",
			in:   `{"registry.corp":{"auth":"` + b64("x:y") + `","email":"x@corp"}}`,
			want: map[string]authn.AuthConfig{"registry.corp": {Username: "x", Password: "y"}},
		},
		{
			name: "unpadded base64",
			in:   `{"auths":{"r.example":{"auth":"` + strings.TrimRight(b64("ab:c"), "=") + `"}}}`,
			want: map[string]authn.AuthConfig{"r.example": {Username: "ab", Password: "c"}},
		},
		{
			name: "Secret with .dockerconfigjson",
			in:   secret(".dockerconfigjson", `{"auths":{"ghcr.io/acme":{"auth":"`+b64("ci:tok")+`"}}}`),
			want: map[string]authn.AuthConfig{"ghcr.io/acme": {Username: "ci", Password: "tok"}},
		},
		{
			name: "Secret with .dockercfg",
			in:   secret(".dockercfg", `{"registry.corp":{"auth":"`+b64("ci:tok")+`"}}`),
			want: map[string]authn.AuthConfig{"registry.corp": {Username: "ci", Password: "tok"}},
		},
		{name: "only a credential store", in: `{"credsStore":"desktop"}`, want: map[string]authn.AuthConfig{}},
		{name: "empty object", in: `{}`, want: map[string]authn.AuthConfig{}},

		{name: "not json", in: `auths: {}`, wantErr: "not a JSON object"},
		{name: "null", in: `null`, wantErr: "not a JSON object: null"},
		{name: "array", in: `[]`, wantErr: "not a JSON object"},
		{name: "auths not an object", in: `{"auths":[]}`, wantErr: "auths:"},
		{name: "bad auth base64", in: `{"auths":{"r.example":{"auth":"!!!"}}}`, wantErr: `auths["r.example"].auth: not base64`},
		{name: "auth without colon", in: `{"auths":{"r.example":{"auth":"` + b64("nocolon") + `"}}}`, wantErr: `decodes to no "user:password"`},
		{name: "username without password", in: `{"auths":{"r.example":{"username":"u"}}}`, wantErr: "a username needs a password"},
		{name: "bad key", in: `{"auths":{"bad host!":{"auth":"` + b64("a:b") + `"}}}`, wantErr: `auths["bad host!"]`},
		{name: "not a Secret", in: `{"kind":"ConfigMap","data":{}}`, wantErr: "must be a Kubernetes Secret"},
		{name: "Secret without docker data", in: `{"kind":"Secret","data":{"token":"eA=="}}`, wantErr: "neither .dockerconfigjson nor .dockercfg"},
		{name: "Secret data not base64", in: `{"kind":"Secret","data":{".dockerconfigjson":"%%%"}}`, wantErr: `data[".dockerconfigjson"]: not base64`},
		{name: "Secret in a Secret", in: secret(".dockerconfigjson", `{"kind":"Secret"}`), wantErr: "a Secret inside a Secret"},
		{name: ".dockercfg entry not an object", in: `{"registry.corp":"x"}`, wantErr: "nor a .dockercfg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCredentials([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gotMap := map[string]authn.AuthConfig{}
			for _, c := range got {
				gotMap[c.Rule.Text] = c.Auth
			}
			if len(gotMap) != len(tt.want) {
				t.Fatalf("got %v, want %v", gotMap, tt.want)
			}
			for k, v := range tt.want {
				if gotMap[k] != v {
					t.Errorf("%s: got %+v, want %+v", k, gotMap[k], v)
				}
			}
		})
	}
}

func TestParseToken(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{in: "eyJ2ZXIiOiIyIn0.abc\n", want: "eyJ2ZXIiOiIyIn0.abc"},
		{in: "  tok  ", want: "tok"},
		{in: `{"token_id":"x","access_token":"eyJ.a.b","expires_in":3600,"token_type":"Bearer"}`, want: "eyJ.a.b"},
		{in: `{"token":"t1"}`, want: "t1"},
		{in: "", wantErr: "empty token"},
		{in: "\n\t ", wantErr: "empty token"},
		{in: `{"access_token":""}`, wantErr: `"access_token" is empty`},
		{in: `{"scope":"x"}`, wantErr: `JSON without "access_token"`},
		{in: `{"access_token":`, wantErr: "looks like JSON but is not"},
		{in: "two words", wantErr: "byte 0x20 at offset 3"},
		{in: "tok\x00en", wantErr: "byte 0x00"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseToken([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestKeychain: per-registry auth wins over files; within the files the most specific entry wins; Docker Hub's
// names are one registry.
func TestKeychain(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgFile, []byte(`{"auths":{
		"https://index.docker.io/v1/":{"auth":"`+b64("hub:1")+`"},
		"ghcr.io":{"auth":"`+b64("ghcr:any")+`"},
		"ghcr.io/acme":{"auth":"`+b64("ghcr:acme")+`"},
		"*.corp.example":{"auth":"`+b64("corp:wild")+`"},
		"a.corp.example":{"auth":"`+b64("corp:exact")+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	explicit, err := HostConfig{Host: "ghcr.io", Auth: AuthConfig{Username: "explicit", Password: "x"}}.compile()
	if err != nil {
		t.Fatal(err)
	}
	k, err := newKeychain([]compiledHost{explicit}, CredentialsConfig{DockerConfigFiles: []string{cfgFile}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ repo, wantUser string }{
		{"nginx", "hub"},
		{"index.docker.io/library/nginx", "hub"},
		{"ghcr.io/acme/app", "explicit"},
		{"b.corp.example/app", "corp"},
		{"a.corp.example/app", "corp"},
		{"quay.io/x/y", ""},
	}
	for _, tt := range tests {
		r, err := name.NewRepository(tt.repo)
		if err != nil {
			t.Fatal(err)
		}
		a, err := k.Resolve(r)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Username != tt.wantUser {
			t.Errorf("%s: user %q, want %q", tt.repo, cfg.Username, tt.wantUser)
		}
	}
	// Without the explicit entry, ghcr.io/acme gets its own, more specific file entry.
	k, _ = newKeychain(nil, CredentialsConfig{DockerConfigFiles: []string{cfgFile}})
	for repo, pass := range map[string]string{"ghcr.io/acme/app": "acme", "ghcr.io/other/app": "any", "a.corp.example/x": "exact", "b.corp.example/x": "wild"} {
		r, _ := name.NewRepository(repo)
		a, _ := k.Resolve(r)
		cfg, _ := a.Authorization()
		if cfg.Password != pass {
			t.Errorf("%s: password %q, want %q", repo, cfg.Password, pass)
		}
	}
}

// FuzzParseCredentials: any file content gives credentials with a valid rule, or an error that says what is
// wrong; never a panic.
func FuzzParseCredentials(f *testing.F) {
	f.Add(`{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("u:p") + `"}}}`)
	f.Add(`{"registry.corp":{"auth":"` + b64("x:y") + `"}}`)
	f.Add(`{"kind":"Secret","data":{".dockerconfigjson":"` + b64(`{"auths":{"a.b":{"username":"u","password":"p"}}}`) + `"}}`)
	f.Add(`{"credsStore":"desktop"}`)
	f.Add(`{"auths":{"*.x.y/z":{"identitytoken":"t"}}}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, in string) {
		creds, err := ParseCredentials([]byte(in))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, c := range creds {
			if c.Rule.Host == "" {
				t.Fatalf("credential without a host: %+v", c)
			}
			if c.Auth == (authn.AuthConfig{}) {
				t.Fatalf("empty credential kept: %+v", c)
			}
		}
	})
}

// FuzzParseToken: an accepted token is non-empty printable ASCII without spaces, safe for an HTTP header.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"tok", "  tok\n", `{"access_token":"a.b.c"}`, `{"token":""}`, "{", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tok, err := ParseToken([]byte(in))
		if err != nil {
			return
		}
		if tok == "" {
			t.Fatal("empty token accepted")
		}
		for i := 0; i < len(tok); i++ {
			if tok[i] < 0x21 || tok[i] > 0x7e {
				t.Fatalf("token %q has byte 0x%02x", tok, tok[i])
			}
		}
	})
}
