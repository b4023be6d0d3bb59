package ui_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runtrust/runtrust/internal/records"
	runtrustv1 "github.com/runtrust/runtrust/proto/runtrust/v1"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// seedImages ingests n images over gRPC, in batches as a collector sends them: one container each (every
// seventh image runs in three pods), severities and verdicts spread as a real estate's are, mostly clean.
func seedImages(b testing.TB, s *runningService, n int) {
	b.Helper()
	c := s.enrol(b, 0, "uid-big", "big", runtrustv1.Mode_MODE_IMPACT, 50)
	now := time.Now().UTC()
	kinds := []struct{ verdict, severity string }{
		{records.IntegrityVerified, records.SeverityNone}, {records.IntegrityVerified, records.SeverityNone},
		{records.IntegrityVerified, records.SeverityNone}, {records.IntegrityStaleTag, records.SeverityMedium},
		{records.IntegrityUnverified, records.SeverityLow}, {records.IntegrityArtifactMissing, records.SeverityHigh},
		{records.IntegrityVerified, records.SeverityNone}, {records.IntegrityDigestMismatch, records.SeverityCritical},
	}
	var batch []rec
	for i := 0; i < n; i++ {
		k := kinds[i%len(kinds)]
		img := image{ref: fmt.Sprintf("registry.corp.example/team-%d/service-%d:v%d", i%40, i, i%7), digest: realDigest(i),
			expected: realDigest(i), verdict: k.verdict, severity: k.severity, trusted: true, pullPolicy: "IfNotPresent",
			reasons: []string{k.verdict + ": seeded"}}
		pods := 1
		if i%7 == 0 {
			pods = 3
		}
		w := workload{"Deployment", fmt.Sprintf("svc-%d", i), fmt.Sprintf("ns-%d", i%60), []string{fmt.Sprintf("node-%d", i%50)}, pods}
		batch = append(batch, containers(now, img, w)...)
		if len(batch) >= 1000 || i == n-1 {
			c.send(b, batch...)
			batch = batch[:0]
		}
	}
}

// realDigest is a digest that looks like a real one (random hex), so gzip is measured on what it will meet:
// digests are most of an image list's bytes and compress far less than counters padded with zeros would.
func realDigest(i int) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(strconv.Itoa(i))))
}

// pageRequest is one request the images page makes on a first visit.
type pageRequest struct{ name, path string }

var assetRefRE = regexp.MustCompile(`/ui/app\.[0-9a-f]{8}\.(js|css)`)

// BenchmarkImagesPageLoad10k: the images view over 10,000 images. "http" times each request the page makes
// on a first visit (the page, its two assets, the first API page of 50 images, the cluster list for the
// filter) against the real service on loopback, as a browser asks for them (gzip), and reports the bytes
// transferred. "chromium" loads the page in headless Chromium and reports the time from navigation to the
// drawn table and what the Resource Timing API counts as transferred.
//
//	go test -run '^$' -bench ImagesPageLoad10k -count 6 ./runtime-service/internal/ui/
func BenchmarkImagesPageLoad10k(b *testing.B) {
	s := startService(b, 1)
	start := time.Now()
	seedImages(b, s, 10_000)
	b.Logf("seeded 10,000 images over gRPC in %v", time.Since(start).Round(time.Millisecond))
	var list imageList
	apiGet(b, s.base+"/api/v1/images?limit=1", &list)
	if list.Total != 10_000 {
		b.Fatalf("the API lists %d images, want 10,000", list.Total)
	}

	client := &http.Client{Transport: &http.Transport{DisableCompression: true}} // count the gzip bytes as sent
	fetch := func(path string) (status int, wire int) {
		req, _ := http.NewRequest("GET", s.base+path, nil)
		req.Header.Set("Accept-Encoding", "gzip, deflate, br")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			b.Fatal(err)
		}
		return resp.StatusCode, int(n)
	}
	resp, err := http.Get(s.base + "/") // decompressed, to read the asset names
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assets := assetRefRE.FindAllString(string(page), -1)
	if len(assets) != 2 {
		b.Fatalf("assets in the page: %v", assets)
	}
	reqs := []pageRequest{{"html", "/"}}
	for _, a := range assets {
		reqs = append(reqs, pageRequest{assetRefRE.FindStringSubmatch(a)[1], a})
	}
	reqs = append(reqs, pageRequest{"api-images", "/api/v1/images?limit=50"}, pageRequest{"api-clusters", "/api/v1/clusters?limit=500"})

	b.Run("http", func(b *testing.B) {
		per := make([]time.Duration, len(reqs))
		size := make([]int, len(reqs))
		for b.Loop() {
			for i, r := range reqs {
				t0 := time.Now()
				status, n := fetch(r.path)
				per[i] += time.Since(t0)
				if status != 200 {
					b.Fatalf("%s: %d", r.path, status)
				}
				size[i] = n
			}
		}
		total := 0
		for i, r := range reqs {
			b.ReportMetric(float64(per[i].Microseconds())/float64(b.N), r.name+"-µs")
			b.ReportMetric(float64(size[i]), r.name+"-B")
			total += size[i]
		}
		b.ReportMetric(float64(total), "wire-bytes/load")
		// What gzip saves on the API page: its size uncompressed.
		resp, err := http.Get(s.base + "/api/v1/images?limit=50")
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		b.ReportMetric(float64(len(raw)), "api-images-uncompressed-B")
	})

	b.Run("chromium", func(b *testing.B) {
		ctx := browser(b)
		// The first load in a fresh profile fetches everything; the loop's loads revalidate the page and
		// take the assets from the cache.
		load := func() (ms, transfer float64) {
			// A fresh document each time; the HTTP cache is kept, as for a user opening the page again.
			if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(s.base+"/#/images")); err != nil {
				b.Fatal(err)
			}
			if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(`main[data-ready="images"]`))); err != nil {
				b.Fatal(err)
			}
			ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`Number(document.querySelector('main').dataset.readyMs)`))
			if err != nil {
				b.Fatal(err)
			}
			t, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).reduce((s, e) => s + e.transferSize, 0)`))
			if err != nil {
				b.Fatal(err)
			}
			return ms, t
		}
		coldMS, coldTransfer := load()
		var total, transfer float64
		for b.Loop() {
			ms, t := load()
			total += ms
			transfer += t
		}
		b.ReportMetric(coldMS, "cold-ms-to-table")
		b.ReportMetric(coldTransfer, "cold-transfer-bytes")
		b.ReportMetric(total/float64(b.N), "ms-to-table")
		b.ReportMetric(transfer/float64(b.N), "transfer-bytes/load")
	})
}

// BenchmarkClustersPageLoad500: the clusters view of one cluster of 500 nodes, each with a sensor that reports
// health and holds its own collector token (one in ten stale: last heartbeat 20 minutes back), plus the
// controller. "http" times the cluster detail the view asks for (500 nodes, 501 collectors; gzip, as a browser
// asks) and reports its bytes; "chromium" the time from navigation to both tables drawn, sorted stale first.
//
//	go test -run '^$' -bench ClustersPageLoad500 -count 6 ./runtime-service/internal/ui/
func BenchmarkClustersPageLoad500(b *testing.B) {
	const nodes, staleEvery = 500, 10
	s := startService(b, 1)
	start := time.Now()
	now := time.Now().UTC()
	ctl := s.collector(b, 0, "uid-big", "big", "controller", "v0.161.0", runtrustv1.Mode_MODE_INTEGRITY, nodes, time.Time{})
	// The sensors enrol through the store, with a clock that makes 50 of them stale: what is measured here is the
	// view, not enrolment.
	clock := now
	st, err := store.Open(context.Background(), s.dsn, store.Options{Now: func() time.Time { return clock }})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var recs []rec
	for i := range nodes {
		name := fmt.Sprintf("node-%03d", i)
		_, c, err := st.EnrolCollector(context.Background(), store.Enrolment{JoinKey: joinKeyPrefix + "a", ClusterUID: "uid-big",
			ClusterName: "big", CollectorID: name, Mode: "impact"})
		if err != nil {
			b.Fatal(err)
		}
		clock = now
		if i%staleEvery == 0 {
			clock = now.Add(-20 * time.Minute)
		}
		if err := st.Heartbeat(context.Background(), c, "v0.161.0", "impact", 0); err != nil {
			b.Fatal(err)
		}
		recs = append(recs, node(now, name), sensorHealth(now, name, 1000*i, i%3))
	}
	ctl.send(b, recs...)
	b.Logf("seeded %d nodes and %d collectors in %v", nodes, nodes+1, time.Since(start).Round(time.Millisecond))
	var detail struct {
		NodeList   []json.RawMessage `json:"node_list"`
		Collectors []struct {
			Live bool `json:"live"`
		} `json:"collectors"`
	}
	apiGet(b, s.base+"/api/v1/clusters/uid-big", &detail)
	stale := 0
	for _, k := range detail.Collectors {
		if !k.Live {
			stale++
		}
	}
	if len(detail.NodeList) != nodes || len(detail.Collectors) != nodes+1 || stale != nodes/staleEvery {
		b.Fatalf("the API has %d nodes, %d collectors (%d stale); want %d, %d (%d)", len(detail.NodeList),
			len(detail.Collectors), stale, nodes, nodes+1, nodes/staleEvery)
	}

	b.Run("http", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{DisableCompression: true}} // count the gzip bytes as sent
		var size int64
		for b.Loop() {
			req, _ := http.NewRequest("GET", s.base+"/api/v1/clusters/uid-big", nil)
			req.Header.Set("Accept-Encoding", "gzip, deflate, br")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			size, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("cluster detail: %d, %v", resp.StatusCode, err)
			}
		}
		b.ReportMetric(float64(size), "detail-gzip-B")
	})

	b.Run("chromium", func(b *testing.B) {
		ctx := browser(b)
		load := func() float64 {
			if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(s.base+"/#/clusters")); err != nil {
				b.Fatal(err)
			}
			if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(`main[data-ready="clusters"]`))); err != nil {
				b.Fatal(err)
			}
			ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`Number(document.querySelector('main').dataset.readyMs)`))
			if err != nil {
				b.Fatal(err)
			}
			return ms
		}
		load()
		// What was drawn is what was asked for: every collector, the stale ones first.
		order, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('table.collectors tbody tr')].map(r => r.dataset.live)`))
		if err != nil {
			b.Fatal(err)
		}
		if len(order) != nodes+1 || order[nodes/staleEvery-1] != "false" || order[nodes/staleEvery] != "true" {
			b.Fatalf("collector rows drawn: %d, want %d with the %d stale first", len(order), nodes+1, nodes/staleEvery)
		}
		var total float64
		for b.Loop() {
			total += load()
		}
		b.ReportMetric(total/float64(b.N), "ms-to-tables")
	})
}
