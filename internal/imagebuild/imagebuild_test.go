package imagebuild

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func TestParseRuntimeStage(t *testing.T) {
	for _, c := range []struct {
		name, dockerfile string
		want             Stage
		err              string
	}{
		{name: "two stages, the last kept", dockerfile: `# build
FROM golang:1.26-bookworm AS build
RUN go build -o /out/app .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
COPY config/app.yaml /etc/app.yaml
# runs as nonroot
USER 65532:65532
EXPOSE 4319 8080/tcp
ENV GOMEMLIMIT=200MiB
LABEL org.opencontainers.image.source=https://example.invalid
ENTRYPOINT ["/app"]
CMD ["--config=/etc/app.yaml"]
`, want: Stage{Base: "gcr.io/distroless/static-debian12:nonroot",
			Copies: []Copy{{From: "build", Src: "/out/app", Dst: "/app"}, {Src: "config/app.yaml", Dst: "/etc/app.yaml"}},
			User:   "65532:65532", Expose: []string{"4319/tcp", "8080/tcp"}, Env: []string{"GOMEMLIMIT=200MiB"},
			Entrypoint: []string{"/app"}, Cmd: []string{"--config=/etc/app.yaml"}}},
		{name: "continued line", dockerfile: "FROM scratch\nCMD [\"/app\", \\\n  \"-v\"]\n",
			want: Stage{Base: "scratch", Cmd: []string{"/app", "-v"}}},
		{name: "lowercase instructions", dockerfile: "from scratch\nuser 1000\n", want: Stage{Base: "scratch", User: "1000"}},
		{name: "no FROM", dockerfile: "COPY a /a\n", err: "no FROM"},
		{name: "FROM without image", dockerfile: "FROM\n", err: "line 1: FROM without an image"},
		{name: "RUN in the runtime stage", dockerfile: "FROM scratch\nRUN true\n", err: "line 2: RUN: not reproduced"},
		{name: "shell-form CMD", dockerfile: "FROM scratch\nCMD /app -v\n", err: "line 2: CMD: \"/app -v\": want the exec form"},
		{name: "empty ENTRYPOINT", dockerfile: "FROM scratch\nENTRYPOINT []\n", err: "want the exec form"},
		{name: "COPY flag", dockerfile: "FROM scratch\nCOPY --chown=1:1 a /a\n", err: `flag "--chown=1:1"`},
		{name: "COPY two sources", dockerfile: "FROM scratch\nCOPY a b /d/\n", err: "want one source and one destination"},
		{name: "COPY to a directory", dockerfile: "FROM scratch\nCOPY a /d/\n", err: "want an absolute file path"},
		{name: "COPY relative", dockerfile: "FROM scratch\nCOPY a d\n", err: "want an absolute file path"},
		{name: "USER with spaces", dockerfile: "FROM scratch\nUSER a b\n", err: "want one user"},
		{name: "ENV without =", dockerfile: "FROM scratch\nENV A B\n", err: "want KEY=value"},
		{name: "ends continued", dockerfile: "FROM scratch\nCMD [\"a\", \\\n", err: "ends inside a continued line"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseRuntimeStage(c.dockerfile)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func FuzzParseRuntimeStage(f *testing.F) {
	for _, name := range []string{"Dockerfile.collector", "Dockerfile.runtime-service"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "docker", name)); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("FROM scratch\nCOPY --from=b /x /y\nCMD [\"/y\"]\n")
	f.Fuzz(func(t *testing.T, dockerfile string) {
		st, err := ParseRuntimeStage(dockerfile)
		if err != nil {
			return
		}
		if st.Base == "" {
			t.Fatal("a stage without a base image")
		}
		for _, c := range st.Copies {
			if !strings.HasPrefix(c.Dst, "/") || c.Src == "" {
				t.Fatalf("copy %+v accepted", c)
			}
		}
	})
}

// TestBuild assembles a stage and reads the image back: the base's user and directories, the copied files
// (a built one and one of the context) with their modes, and the stage's config.
func TestBuild(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config", "app.yaml"), []byte("a: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := Stage{Copies: []Copy{{From: "build", Src: "/out/app", Dst: "/app"}, {Src: "config/app.yaml", Dst: "/etc/app/app.yaml"}},
		User: "65532:65532", Entrypoint: []string{"/app"}, Cmd: []string{"-v"}, Expose: []string{"8080/tcp"}}
	img, err := Build(st, dir, map[string]string{"/out/app": bin})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || !reflect.DeepEqual(cf.Config.Entrypoint, []string{"/app"}) ||
		!reflect.DeepEqual(cf.Config.Cmd, []string{"-v"}) || len(cf.Config.ExposedPorts) != 1 || cf.OS != "linux" {
		t.Fatalf("config %+v", cf.Config)
	}
	got := map[string]*tar.Header{}
	contents := map[string]string{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got["/"+strings.TrimSuffix(h.Name, "/")] = h
		b, _ := io.ReadAll(tr)
		contents["/"+h.Name] = string(b)
	}
	for p, mode := range map[string]int64{"/app": 0o755, "/etc/app/app.yaml": 0o644, "/etc/passwd": 0o644, "/tmp": 0o1777, "/etc/app": 0o755} {
		h, ok := got[p]
		if !ok {
			t.Errorf("%s missing from the image", p)
			continue
		}
		if h.Mode != mode {
			t.Errorf("%s mode %o, want %o", p, h.Mode, mode)
		}
	}
	if !strings.Contains(contents["/etc/passwd"], "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user: %q", contents["/etc/passwd"])
	}
	if contents["/etc/app/app.yaml"] != "a: 1\n" {
		t.Errorf("/etc/app/app.yaml = %q", contents["/etc/app/app.yaml"])
	}
	if got["/home/nonroot"] == nil || got["/home/nonroot"].Uid != 65532 {
		t.Errorf("/home/nonroot not owned by nonroot: %+v", got["/home/nonroot"])
	}

	if _, err := Build(Stage{Copies: []Copy{{From: "build", Src: "/out/other", Dst: "/x"}}}, dir, nil); err == nil ||
		!strings.Contains(err.Error(), "no built file was given") {
		t.Errorf("a --from copy without its built file: %v", err)
	}
	if _, err := Build(Stage{Copies: []Copy{{Src: "config", Dst: "/x"}}}, dir, nil); err == nil ||
		!strings.Contains(err.Error(), "only regular files") {
		t.Errorf("a directory copy: %v", err)
	}
}
