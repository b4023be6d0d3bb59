// Package imagebuild assembles the collector's and the runtime service's container images without a docker
// daemon, from the runtime stage of their Dockerfiles (deploy/docker): the files the stage copies (build
// outputs the caller supplies, files of the repository), its USER, ENTRYPOINT, CMD, EXPOSE and ENV, on a base
// layer holding what distroless/static-debian12:nonroot gives the binaries (the nonroot user and group, /tmp,
// the CA certificates). Reading the Dockerfile, rather than a second recipe, is what keeps the two in step: an
// instruction this package does not know fails the build.
package imagebuild

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Stage is the runtime stage of a Dockerfile: what follows its last FROM.
type Stage struct {
	Base       string // the last FROM's image
	Copies     []Copy
	User       string
	Entrypoint []string
	Cmd        []string
	Expose     []string
	Env        []string // KEY=value
}

// Copy is one COPY of the stage: Src from the build context, or from the stage named From.
type Copy struct {
	From, Src, Dst string
}

// ParseRuntimeStage reads a Dockerfile and returns its last stage. Line continuations and comments are
// handled; ENTRYPOINT and CMD must be in exec (JSON) form. An instruction the stage may not hold here (RUN:
// nothing runs in a distroless stage; ADD, ARG, WORKDIR, VOLUME and the rest, which this builder does not
// reproduce) is an error naming its line.
func ParseRuntimeStage(dockerfile string) (Stage, error) {
	var st Stage
	from := 0
	lines, err := logicalLines(dockerfile)
	if err != nil {
		return st, err
	}
	for _, l := range lines {
		if strings.EqualFold(l.instr, "FROM") {
			from = l.n
			f := strings.Fields(l.args)
			if len(f) == 0 {
				return Stage{}, fmt.Errorf("line %d: FROM without an image", l.n)
			}
			st = Stage{Base: f[0]}
		}
	}
	if from == 0 {
		return Stage{}, errors.New("no FROM: not a Dockerfile")
	}
	for _, l := range lines {
		if l.n <= from {
			continue
		}
		if err := st.apply(l); err != nil {
			return Stage{}, fmt.Errorf("line %d: %s: %w", l.n, l.instr, err)
		}
	}
	return st, nil
}

type logicalLine struct {
	n           int // the line it starts on
	instr, args string
}

func logicalLines(dockerfile string) ([]logicalLine, error) {
	var out []logicalLine
	var cur *logicalLine
	sc := bufio.NewScanner(strings.NewReader(dockerfile))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if cur == nil && (text == "" || strings.HasPrefix(text, "#")) {
			continue
		}
		cont := strings.HasSuffix(text, "\\")
		text = strings.TrimSuffix(text, "\\")
		if cur == nil {
			instr, args, _ := strings.Cut(text, " ")
			cur = &logicalLine{n: n, instr: strings.ToUpper(instr), args: strings.TrimSpace(args)}
		} else if !strings.HasPrefix(text, "#") {
			cur.args = strings.TrimSpace(cur.args + " " + text)
		}
		if !cont {
			out = append(out, *cur)
			cur = nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: the file ends inside a continued line", cur.n)
	}
	return out, nil
}

func (st *Stage) apply(l logicalLine) error {
	switch l.instr {
	case "COPY":
		f := strings.Fields(l.args)
		var c Copy
		for len(f) > 0 && strings.HasPrefix(f[0], "--") {
			k, v, _ := strings.Cut(strings.TrimPrefix(f[0], "--"), "=")
			if k != "from" || v == "" {
				return fmt.Errorf("flag %q: only --from=<stage> is reproduced", f[0])
			}
			c.From = v
			f = f[1:]
		}
		if len(f) != 2 {
			return fmt.Errorf("%q: want one source and one destination", l.args)
		}
		if !path.IsAbs(f[1]) || strings.HasSuffix(f[1], "/") {
			return fmt.Errorf("destination %q: want an absolute file path", f[1])
		}
		c.Src, c.Dst = f[0], f[1]
		st.Copies = append(st.Copies, c)
	case "USER":
		if l.args == "" || strings.ContainsAny(l.args, " \t") {
			return fmt.Errorf("%q: want one user[:group]", l.args)
		}
		st.User = l.args
	case "ENTRYPOINT", "CMD":
		var argv []string
		if err := json.Unmarshal([]byte(l.args), &argv); err != nil || len(argv) == 0 {
			return fmt.Errorf("%q: want the exec form, a JSON array of strings", l.args)
		}
		if l.instr == "CMD" {
			st.Cmd = argv
		} else {
			st.Entrypoint = argv
		}
	case "EXPOSE":
		for _, p := range strings.Fields(l.args) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			st.Expose = append(st.Expose, p)
		}
	case "ENV":
		k, v, ok := strings.Cut(l.args, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return fmt.Errorf("%q: want KEY=value", l.args)
		}
		st.Env = append(st.Env, k+"="+v)
	case "LABEL":
		// Metadata for registries: not part of what runs.
	default:
		return errors.New("not reproduced by this builder (add it here, or leave it out of the runtime stage)")
	}
	return nil
}

// Build assembles stage's image for linux/amd64: the base layer, then one layer with every file the stage
// copies. root is the build context (the repository); built maps a build stage's path (COPY --from) to the
// file on this machine that holds it.
func Build(stage Stage, root string, built map[string]string) (v1.Image, error) {
	files := map[string]fileEntry{}
	for _, c := range stage.Copies {
		src := filepath.Join(root, filepath.FromSlash(c.Src))
		if c.From != "" {
			p, ok := built[c.Src]
			if !ok {
				return nil, fmt.Errorf("COPY --from=%s %s: no built file was given for it", c.From, c.Src)
			}
			src = p
		}
		fi, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("COPY %s: %w", c.Src, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("COPY %s: only regular files are reproduced", c.Src)
		}
		files[c.Dst] = fileEntry{host: src, mode: int64(fi.Mode().Perm())}
	}
	base, err := layer(baseFiles())
	if err != nil {
		return nil, err
	}
	app, err := layer(files)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, base, app)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.User, cf.Config.Entrypoint, cf.Config.Cmd = stage.User, stage.Entrypoint, stage.Cmd
	cf.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}, stage.Env...)
	if len(stage.Expose) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range stage.Expose {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	return mutate.ConfigFile(img, cf)
}

type fileEntry struct {
	host    string // a file on this machine, or
	content []byte // the content
	mode    int64
	dir     bool
}

// hostCABundle is Debian's CA bundle, which distroless carries at the same path.
const hostCABundle = "/etc/ssl/certs/ca-certificates.crt"

// baseFiles is what distroless/static-debian12:nonroot gives that the binaries use.
func baseFiles() map[string]fileEntry {
	files := map[string]fileEntry{
		"/etc/passwd":    {content: []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), mode: 0o644},
		"/etc/group":     {content: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"), mode: 0o644},
		"/tmp":           {dir: true, mode: 0o1777},
		"/home/nonroot":  {dir: true, mode: 0o700},
		"/etc/ssl/certs": {dir: true, mode: 0o755},
	}
	if _, err := os.Stat(hostCABundle); err == nil {
		files[hostCABundle] = fileEntry{host: hostCABundle, mode: 0o644}
	}
	return files
}

// layer writes files (with their parent directories) into one tar layer, in path order.
func layer(files map[string]fileEntry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := files[p]
		for d := path.Dir(p); d != "/" && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
		if f.dir {
			dirs[p] = true
		}
	}
	dirList := make([]string, 0, len(dirs))
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList)
	for _, d := range dirList {
		mode := int64(0o755)
		owner := 0
		if f, ok := files[d]; ok && f.dir {
			mode = f.mode
		}
		if d == "/home/nonroot" {
			owner = 65532
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: mode, Uid: owner, Gid: owner}); err != nil {
			return nil, err
		}
	}
	for _, p := range paths {
		f := files[p]
		if f.dir {
			continue
		}
		content := f.content
		if f.host != "" {
			b, err := os.ReadFile(f.host)
			if err != nil {
				return nil, err
			}
			content = b
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: f.mode, Size: int64(len(content))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}
