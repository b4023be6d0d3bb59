package drift

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// bigImage is a 500 MB image (uncompressed, as `docker images` counts it) shaped like a large application image:
// five layers of 100 MB, each with four 10 MB files (shared libraries, a runtime) and some 3,600 small ones
// (1–32 KiB: sources, scripts, data), half their bytes random and half repetitive so gzip halves them about
// as it does real content. The layers are written once, gzipped, to files the benchmark reads like blobs.
const (
	bigLayers     = 5
	bigLayerBytes = 100 << 20
	bigFiles      = 4
	bigFileBytes  = 10 << 20
)

func writeBigLayer(path string, layer int) (files int, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zw, _ := gzip.NewWriterLevel(f, gzip.DefaultCompression)
	tw := tar.NewWriter(zw)
	rng := rand.New(rand.NewPCG(uint64(layer), 42))
	buf := make([]byte, bigFileBytes)
	content := func(n int) []byte {
		b := buf[:n]
		for i := 0; i < n/2; i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8 && i+j < n/2; j++ {
				b[i+j] = byte(v >> (8 * j))
			}
		}
		for i := n / 2; i < n; i++ {
			b[i] = "the quick brown fox jumps over the lazy dog\n"[i%44]
		}
		return b
	}
	write := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(b))}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	written := 0
	for i := 0; i < bigFiles; i++ {
		if err := write(fmt.Sprintf("opt/app%d/lib/big%d.so", layer, i), content(bigFileBytes)); err != nil {
			return 0, err
		}
		written += bigFileBytes
		files++
	}
	for written < bigLayerBytes {
		n := min(1<<10+rng.IntN(31<<10), bigLayerBytes-written)
		if err := write(fmt.Sprintf("opt/app%d/share/d%03d/f%05d", layer, files%256, files), content(n)); err != nil {
			return 0, err
		}
		written += n
		files++
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return files, f.Close()
}

// bigImageOnce writes the layers once per machine, under the user's cache (~/.cache/runtrust/drift-bench-v1,
// about 290 MB): they are the same bytes on every run, and writing them takes longer than the benchmark.
var bigImageOnce = sync.OnceValues(func() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "runtrust", "drift-bench-v1")
	done := filepath.Join(dir, "complete")
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for l := 0; l < bigLayers; l++ {
		if _, err := writeBigLayer(filepath.Join(dir, fmt.Sprintf("layer%d.tar.gz", l)), l); err != nil {
			return "", err
		}
	}
	return dir, os.WriteFile(done, nil, 0o644)
})

func bigImage(b *testing.B) v1.Image {
	dir, err := bigImageOnce()
	if err != nil {
		b.Fatal(err)
	}
	var layers []v1.Layer
	for l := 0; l < bigLayers; l++ {
		layer, err := tarball.LayerFromFile(filepath.Join(dir, fmt.Sprintf("layer%d.tar.gz", l)))
		if err != nil {
			b.Fatal(err)
		}
		layers = append(layers, layer)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		b.Fatal(err)
	}
	return img
}

// peakHeap samples the live heap every 5 ms until stop is called, and returns the highest sample.
func peakHeap() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak }
}

// BenchmarkLayerIndex500MB builds the index of bigImage from its gzipped layer files: decompression, tar
// reading, SHA-256 of every byte, the layer rules. Reported: MB/s of uncompressed image, the live heap's peak
// during a build above what was live before it, and the index's files.
func BenchmarkLayerIndex500MB(b *testing.B) {
	img := bigImage(b)
	b.SetBytes(bigLayers * bigLayerBytes)
	b.ReportAllocs()
	var peak uint64
	var files int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.GC()
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(sample)
		base := sample[0].Value.Uint64()
		stop := peakHeap()
		idx, err := Build(context.Background(), img, Limits{})
		p := stop()
		if err != nil {
			b.Fatal(err)
		}
		if idx.Truncated || idx.Bytes != bigLayers*bigLayerBytes {
			b.Fatalf("index truncated=%v of %d bytes, want all %d", idx.Truncated, idx.Bytes, bigLayers*bigLayerBytes)
		}
		files = len(idx.Files)
		if p > base {
			peak = max(peak, p-base)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(files), "files")
}
