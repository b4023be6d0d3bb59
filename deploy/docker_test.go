package deploy

import (
	"debug/buildinfo"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runtrust/runtrust/testbed"
)

// TestDockerfiles: no docker runs here, so the images' recipes are checked against what the build really uses:
// the Go line of go.mod, the ocb version of the Makefile, the chart's appVersion (the default image tag) and
// the distribution's version; the collector make dist builds is static (it runs on distroless/static as is);
// and the runtime service's RUN line, run as the Dockerfile writes it, builds a static binary that starts.
func TestDockerfiles(t *testing.T) {
	root := repoRoot(t)
	goMod := readFile(t, filepath.Join(root, "go.mod"))
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(goMod)
	ocb := regexp.MustCompile(`(?m)^OCB_VERSION\s*:=\s*(\S+)`).FindStringSubmatch(readFile(t, filepath.Join(root, "Makefile")))
	distVersion := regexp.MustCompile(`(?m)^  version: (\S+)`).FindStringSubmatch(readFile(t, filepath.Join(root, "builder-config.yaml")))
	if goLine == nil || ocb == nil || distVersion == nil {
		t.Fatalf("go.mod go line %v, Makefile OCB_VERSION %v, builder-config.yaml dist.version %v", goLine, ocb, distVersion)
	}
	for _, name := range []string{"Dockerfile.collector", "Dockerfile.runtime-service"} {
		df := readFile(t, filepath.Join(root, "deploy", "docker", name))
		if !strings.Contains(df, "FROM golang:"+goLine[1]+"-") {
			t.Errorf("%s does not build with golang:%s (go.mod's go line)", name, goLine[1])
		}
		if !strings.Contains(df, "FROM gcr.io/distroless/static") {
			t.Errorf("%s: the runtime stage is not distroless/static", name)
		}
		for _, m := range regexp.MustCompile(`(?m)^COPY (distributions/\S+)`).FindAllStringSubmatch(df, -1) {
			if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
				t.Errorf("%s copies %s: %v", name, m[1], err)
			}
		}
	}
	collector := readFile(t, filepath.Join(root, "deploy", "docker", "Dockerfile.collector"))
	if !strings.Contains(collector, "cmd/builder@"+ocb[1]+" ") {
		t.Errorf("Dockerfile.collector does not run ocb %s (the Makefile's OCB_VERSION)", ocb[1])
	}
	for _, chart := range []string{"runtrust", "runtime-service"} {
		appVersion := regexp.MustCompile(`(?m)^appVersion: "(\S+)"`).FindStringSubmatch(readFile(t, filepath.Join(chartDir(t, chart), "Chart.yaml")))
		if appVersion == nil || appVersion[1] != distVersion[1] {
			t.Errorf("%s appVersion %v, want the distribution's version %s (the image tag it deploys)", chart, appVersion, distVersion[1])
		}
	}

	info, err := buildinfo.ReadFile(testbed.CollectorBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range info.Settings {
		if s.Key == "CGO_ENABLED" && s.Value != "0" {
			t.Errorf("the distribution is built with CGO_ENABLED=%s: it would not run on distroless/static", s.Value)
		}
	}

	// The runtime service's build line, as the Dockerfile has it, with the output moved to a temp dir.
	line := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*)$`).FindStringSubmatch(readFile(t, filepath.Join(root, "deploy", "docker", "Dockerfile.runtime-service")))
	if line == nil {
		t.Fatal("Dockerfile.runtime-service has no `RUN CGO_ENABLED=0 go build` line")
	}
	out := filepath.Join(t.TempDir(), "runtime-service")
	fields := strings.Fields(strings.Replace(line[1], "/out/runtime-service", out, 1))
	cmd := append([]string{"CGO_ENABLED=0", "GOFLAGS=-buildvcs=false"}, fields[1:]...)
	stdout, stderr, err := run(t, nil, nil, "/usr/bin/env", append([]string{"-C", root}, cmd...)...)
	if err != nil {
		t.Fatalf("%s: %v\n%s%s", line[1], err, stdout, stderr)
	}
	if help, helpErr, _ := run(t, nil, nil, out, "-h"); !strings.Contains(help+helpErr, "RUNTRUST_DATABASE_URL") {
		t.Errorf("the static runtime-service does not run: %s%s", help, helpErr)
	}
}
