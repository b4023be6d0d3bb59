package imageintegrityprocessor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/runtrust/runtrust/internal/logstest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/processors/imageintegrityprocessor/internal/metadata"
)

const (
	benchBatch      = 1000
	benchUniqueTags = 50
)

// benchFleet pushes benchUniqueTags tags to a real registry (40 single images, 10 multi-arch indexes) and
// returns a batch of inventory-style container records over them: most verified, some running a platform
// manifest, every tenth a stale build.
func benchFleet(tb testing.TB, reg *registrytest.Registry) plog.Logs {
	type image struct{ name, running, stale string }
	var images []image
	for i := range benchUniqueTags {
		repoTag := fmt.Sprintf("team-%d/service-%d:1.%d", i%5, i, i)
		img := image{name: reg.Ref(repoTag)}
		if i%5 == 4 {
			_, platforms := reg.PushIndex(tb, repoTag)
			img.running = platforms[0]
		} else {
			img.stale = reg.PushImage(tb, repoTag)
			img.running = reg.PushImage(tb, repoTag)
		}
		images = append(images, img)
	}
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(records.AttrK8sClusterName, "prod-eu-1")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := range benchBatch {
		img := images[i%len(images)]
		a := logstest.AppendInventoryContainer(lrs, i, img.name)
		a.PutStr(records.AttrImagePullPolicy, "IfNotPresent")
		running := img.running
		if i%10 == 0 && img.stale != "" {
			running = img.stale
		}
		a.PutStr(records.AttrImageRunningDigest, running)
	}
	return ld
}

func benchProcessor(tb testing.TB, cfg *Config) *integrityProcessor {
	p, err := newIntegrityProcessor(cfg, processortest.NewNopSettings(metadata.Type))
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.start(context.Background(), nil); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.shutdown(context.Background()) })
	return p
}

func benchConfig() *Config {
	cfg := testConfig()
	cfg.Cache.TTL = time.Hour
	cfg.DefaultLimits = registry.LimitsConfig{MaxConcurrent: 16, RateLimit: 10000, Burst: 10000}
	return cfg
}

func countVerdicts(ld plog.Logs) map[string]int {
	out := map[string]int{}
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := 0; i < lrs.Len(); i++ {
		v, _ := lrs.At(i).Attributes().Get(records.AttrImageIntegrity)
		out[v.Str()]++
	}
	return out
}

// BenchmarkWarmCache: batches of 1,000 container records over 50 tags, every answer in the cache (the steady
// state: the refresh keeps the tags in use fresh), one goroutine.
func BenchmarkWarmCache(b *testing.B) {
	reg := registrytest.Start(b)
	src := benchFleet(b, reg)
	p := benchProcessor(b, benchConfig())
	ctx := context.Background()
	work := plog.NewLogs()
	src.CopyTo(work)
	if _, err := p.processLogs(ctx, work); err != nil {
		b.Fatal(err)
	}
	if v := countVerdicts(work); v[records.IntegrityVerified]+v[records.IntegrityStaleTag] != benchBatch {
		b.Fatalf("warm-up verdicts: %v", v)
	}
	requests := reg.Total()
	logstest.BenchBatches(b, src, p.processLogs)
	if reg.Total() != requests {
		b.Fatalf("%d registry requests with a warm cache", reg.Total()-requests)
	}
}

// concurrentBatches sends 100 copies of the fleet's batch at once through a processor with a cold cache and
// returns how many tag requests (manifest HEAD or GET by tag) the registry got per unique tag, and how many
// digest requests in all (the stale builds' HEADs and the indexes' GETs, once each).
func concurrentBatches(tb testing.TB, reg *registrytest.Registry, src plog.Logs) (perTag float64, digestRequests int64) {
	p := benchProcessor(tb, benchConfig())
	const batches = 100
	work := make([]plog.Logs, batches)
	for i := range work {
		work[i] = plog.NewLogs()
		src.CopyTo(work[i])
	}
	tags := func() int64 { return reg.Requests("HEAD", "manifests:tag") + reg.Requests("GET", "manifests:tag") }
	digests := func() int64 {
		return reg.Requests("HEAD", "manifests:digest") + reg.Requests("GET", "manifests:digest")
	}
	beforeTags, beforeDigests := tags(), digests()
	var wg sync.WaitGroup
	for i := range work {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.processLogs(context.Background(), work[i]); err != nil {
				tb.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, ld := range work {
		if v := countVerdicts(ld); v[records.IntegrityUnverified] > 0 || v[records.IntegrityDigestMismatch] > 0 {
			tb.Fatalf("verdicts %v", v)
		}
	}
	return float64(tags()-beforeTags) / benchUniqueTags, digests() - beforeDigests
}

// TestOneRequestPerTagUnderLoad: 100 concurrent batches over 50 tags into a cold cache make exactly one tag
// request per tag, and a second round within the TTL makes none.
func TestOneRequestPerTagUnderLoad(t *testing.T) {
	reg := registrytest.Start(t)
	src := benchFleet(t, reg)
	p := benchProcessor(t, benchConfig())
	for round := range 2 {
		tags := reg.Requests("HEAD", "manifests:tag") + reg.Requests("GET", "manifests:tag")
		var wg sync.WaitGroup
		for range 100 {
			wg.Add(1)
			work := plog.NewLogs()
			src.CopyTo(work)
			go func() {
				defer wg.Done()
				if _, err := p.processLogs(context.Background(), work); err != nil {
					t.Error(err)
				}
				if v := countVerdicts(work); v[records.IntegrityUnverified] > 0 {
					t.Errorf("verdicts %v", v)
				}
			}()
		}
		wg.Wait()
		got := reg.Requests("HEAD", "manifests:tag") + reg.Requests("GET", "manifests:tag") - tags
		want := int64(benchUniqueTags)
		if round == 1 {
			want = 0
		}
		if got != want {
			t.Fatalf("round %d: %d tag requests for %d unique tags, want %d", round, got, benchUniqueTags, want)
		}
	}
}

// BenchmarkConcurrentBatches: 100 batches at once into a cold cache; the figure that matters is
// manifest-requests/tag.
func BenchmarkConcurrentBatches(b *testing.B) {
	reg := registrytest.Start(b)
	src := benchFleet(b, reg)
	b.ResetTimer()
	var perTag float64
	var digests int64
	for i := 0; i < b.N; i++ {
		perTag, digests = concurrentBatches(b, reg, src)
	}
	b.ReportMetric(perTag, "tag-requests/tag")
	b.ReportMetric(float64(digests), "digest-requests/round")
	b.ReportMetric(float64(b.N*100*benchBatch)/b.Elapsed().Seconds(), "records/s")
}
