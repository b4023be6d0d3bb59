package sbom

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BenchmarkGenerate500MB generates the SBOM of a large image read from a registry on loopback: several layers
// of many files of pseudo-random content, a dpkg database whose packages list every one of them (through the
// /lib → usr/lib symlink), and copies of a Go binary. It reports ns/op, MB/s (of file content) and the peak
// heap while generating. The 500 MB image is left out with -short; the 50 MB one always runs.
func BenchmarkGenerate500MB(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int64
	}{{"50MB", 50e6}, {"500MB", 500e6}} {
		b.Run(size.name, func(b *testing.B) {
			if size.bytes > 100e6 && testing.Short() {
				b.Skip("the 500 MB image is left out with -short")
			}
			benchmarkGenerate(b, size.bytes)
		})
	}
}

const (
	benchLayers    = 5
	benchPackages  = 500
	benchGoBinCopy = 4
)

func benchmarkGenerate(b *testing.B, size int64) {
	plan := planBenchImage(size)
	goBin, _ := testGoBinary(b)
	layers := []v1.Layer{benchLayer(b, func(tw *tar.Writer) error { return plan.writeBase(tw, goBin) })}
	for l := range benchLayers {
		layers = append(layers, benchLayer(b, func(tw *tar.Writer) error { return plan.writeContent(tw, l) }))
	}
	ref, err := name.ParseReference(startDiskRegistry(b) + "/big:1")
	if err != nil {
		b.Fatal(err)
	}
	img := imageOf(b, linuxAMD64, layers...)
	if err := remote.Write(ref, img); err != nil {
		b.Fatal(err)
	}
	d := digestOf(b, ref.Context(), img)

	b.SetBytes(plan.bytes)
	runtime.GC()
	stop, peak := sampleHeap()
	for b.Loop() {
		remoteImg, err := remote.Image(d)
		if err != nil {
			b.Fatal(err)
		}
		sb, err := Generate(context.Background(), remoteImg, DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		plan.check(b, sb)
	}
	close(stop)
	b.ReportMetric(float64(<-peak)/1e6, "peak-heap-MB")
}

// startDiskRegistry runs go-containerregistry's registry on 127.0.0.1, keeping blobs on disk rather than in
// memory (registrytest's): the image's 500 MB would otherwise sit in the heap the benchmark measures.
func startDiskRegistry(b *testing.B) string {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)),
		ggcrregistry.WithBlobHandler(ggcrregistry.NewDiskBlobHandler(b.TempDir()))))
	b.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// benchLayer is a gzip layer whose tar stream write writes, again each time it is read (nothing held in memory).
func benchLayer(b *testing.B, write func(*tar.Writer) error) v1.Layer {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := write(tw)
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// benchPlan is the files of the benchmark image: sizes drawn once from a seeded generator, so every read of a
// layer writes the same bytes.
type benchPlan struct {
	sizes [benchLayers][]int64
	files int
	bytes int64
}

func planBenchImage(total int64) *benchPlan {
	p := &benchPlan{}
	rng := rand.New(rand.NewPCG(1, 2))
	for l := range benchLayers {
		var layerBytes int64
		for layerBytes < total/benchLayers {
			n := 1024 + rng.Int64N(255*1024) // 1 to 256 KiB
			p.sizes[l] = append(p.sizes[l], n)
			layerBytes += n
			p.files++
			p.bytes += n
		}
	}
	return p
}

func benchPath(l, i int) string {
	return fmt.Sprintf("usr/lib/pkg%03d/l%d-f%05d.bin", i%benchPackages, l, i)
}

// writeContent writes content layer l: its files, every tenth one executable (to be checked for an ELF header).
func (p *benchPlan) writeContent(tw *tar.Writer, l int) error {
	rng := rand.NewChaCha8([32]byte{byte(l)})
	for i, n := range p.sizes[l] {
		mode := int64(0o644)
		if i%10 == 0 {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: benchPath(l, i), Mode: mode, Size: n, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, rng, n); err != nil {
			return err
		}
	}
	return nil
}

// writeBase writes the base layer: directories, the merged-/usr symlinks, os-release, the dpkg database listing
// every content file under /lib (a symlink), and the Go binaries.
func (p *benchPlan) writeBase(tw *tar.Writer, goBin []byte) error {
	var files []file
	for _, d := range []string{"etc", "usr", "usr/bin", "usr/lib", "var", "var/lib", "var/lib/dpkg", "var/lib/dpkg/info"} {
		files = append(files, dir(d))
	}
	files = append(files, symlink("bin", "usr/bin"), symlink("lib", "usr/lib"),
		regular("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"))
	lists := make([]strings.Builder, benchPackages)
	for pkg := range benchPackages {
		files = append(files, dir(fmt.Sprintf("usr/lib/pkg%03d", pkg)))
		fmt.Fprintf(&lists[pkg], "/.\n/lib\n/lib/pkg%03d\n", pkg)
	}
	for l := range benchLayers {
		for i := range p.sizes[l] {
			fmt.Fprintf(&lists[i%benchPackages], "/%s\n", strings.Replace(benchPath(l, i), "usr/lib", "lib", 1))
		}
	}
	var status strings.Builder
	for pkg := range benchPackages {
		fmt.Fprintf(&status, "Package: pkg%03d\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.%d-1\n"+
			"Source: src%03d (1.%d)\nDescription: benchmark package\n long description\n\n", pkg, pkg, pkg/4, pkg)
		files = append(files, regular(fmt.Sprintf("var/lib/dpkg/info/pkg%03d.list", pkg), lists[pkg].String()))
	}
	files = append(files, regular("var/lib/dpkg/status", status.String()))
	for i := range benchGoBinCopy {
		files = append(files, file{path: fmt.Sprintf("usr/bin/hello%d", i), body: string(goBin), mode: 0o755})
	}
	for _, f := range files {
		if err := tw.WriteHeader(f.header()); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			return err
		}
	}
	return nil
}

// check fails the benchmark unless sb has every package and file of the plan, and the Go binaries' stdlib.
func (p *benchPlan) check(b *testing.B, sb *SBOM) {
	debs, files, stdlibFiles := 0, 0, 0
	for _, pkg := range sb.Packages {
		switch {
		case pkg.Type == TypeDeb:
			debs++
			files += len(pkg.Files)
		case pkg.Name == GoStdlib:
			stdlibFiles = len(pkg.Files)
		}
	}
	if debs != benchPackages || files != p.files || stdlibFiles != benchGoBinCopy || sb.Truncated {
		b.Fatalf("SBOM has %d deb packages with %d files, stdlib in %d binaries, truncated %v; want %d, %d, %d, false",
			debs, files, stdlibFiles, sb.Truncated, benchPackages, p.files, benchGoBinCopy)
	}
}

// sampleHeap samples the heap's live objects every few milliseconds until stop closes, then sends the peak.
func sampleHeap() (chan struct{}, <-chan uint64) {
	stop := make(chan struct{})
	out := make(chan uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return stop, out
}
