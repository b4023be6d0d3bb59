package ui_test

import (
	"crypto/sha256"
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
