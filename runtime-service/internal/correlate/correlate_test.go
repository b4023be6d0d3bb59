package correlate_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/runtime-service/internal/api"
	"github.com/runtrust/runtrust/runtime-service/internal/auth"
	"github.com/runtrust/runtrust/runtime-service/internal/correlate"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// paginate puts distribution-style pagination in front of a registry: go-containerregistry's test registry
// answers the catalog and tag lists in one page (it ignores "last" for the catalog), so this layer reads the
// full list from it and hands out pages of at most n names, sorted, with a Link header to the next, as Docker
// Distribution does. pages counts the pages served.
func paginate(pages *atomic.Int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			field := ""
			switch {
			case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/_catalog"):
				field = "repositories"
			case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/tags/list"):
				field = "tags"
			default:
				next.ServeHTTP(w, r)
				return
			}
			full := r.Clone(r.Context())
			full.URL.RawQuery = ""
			full.RequestURI = full.URL.RequestURI()
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, full)
			if rec.Code != http.StatusOK {
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return
			}
			var body map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			var names []string
			for _, n := range body[field].([]any) {
				names = append(names, n.(string))
			}
			sort.Strings(names)
			q := r.URL.Query()
			if last := q.Get("last"); last != "" {
				i := sort.SearchStrings(names, last)
				for i < len(names) && names[i] <= last {
					i++
				}
				names = names[i:]
			}
			n := len(names)
			if s := q.Get("n"); s != "" {
				n, _ = strconv.Atoi(s)
			}
			if n < len(names) {
				names = names[:n]
				w.Header().Set("Link", fmt.Sprintf(`<%s?n=%d&last=%s>; rel="next"`, r.URL.Path, n, url.QueryEscape(names[n-1])))
			}
			pages.Add(1)
			body[field] = names
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(body)
		})
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openStore(t *testing.T, clk *clock) *store.Store {
	t.Helper()
	return storetest.Open(t, store.Options{Now: clk.Now, MaxConns: 4})
}

func enrol(t *testing.T, st *store.Store, uid string) store.Cluster {
	t.Helper()
	ctx := context.Background()
	if err := st.SeedJoinKeys(ctx, []string{"join-" + uid}); err != nil {
		t.Fatal(err)
	}
	_, c, err := st.Enrol(ctx, "join-"+uid, uid, uid)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run ingests a container record: pod runs ref at digest d, seen at at.
func run(t *testing.T, st *store.Store, c store.Cluster, pod, node, ref, d string, at time.Time, deleted bool) {
	t.Helper()
	k := store.Container{PodUID: pod, Name: "app", ContainerID: "cid-" + pod, Namespace: "shop", PodName: pod, NodeName: node,
		WorkloadUID: "w-" + pod, WorkloadKind: "Deployment", WorkloadName: "wl-" + pod, ImageName: ref, ImageRef: ref,
		RunningDigest: d, PullPolicy: "Always", Integrity: records.IntegrityVerified, Severity: records.SeverityNone, Time: at, Deleted: deleted}
	if _, err := st.Apply(context.Background(), c, "", &store.Batch{Containers: []store.Container{k}}); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, h http.Handler, u string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", u, rec.Code, rec.Body)
	}
	return rec
}

// usages reads GET /api/v1/artifacts?<query> into ref → usage.
func usages(t *testing.T, h http.Handler, query string) map[string]string {
	t.Helper()
	var body struct {
		Items []struct {
			Registry *string `json:"registry"`
			Ref      string  `json:"ref"`
			Usage    string  `json:"usage"`
		} `json:"items"`
	}
	if err := json.Unmarshal(get(t, h, "/api/v1/artifacts?limit=500&"+query).Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, it := range body.Items {
		out[it.Ref] = it.Usage
	}
	return out
}

// TestCorrelationAgainstARealRegistry lists a real OCI registry on loopback (paginated by Link headers), links
// what runs to what it stores, and follows tags being deleted and the registry going down.
func TestCorrelationAgainstARealRegistry(t *testing.T) {
	ctx := context.Background()
	var pages atomic.Int64
	reg := registrytest.Start(t, registrytest.WithBasicAuth("ci", "pw"), registrytest.WithMiddleware(paginate(&pages)))
	web1 := reg.PushImage(t, "acme/web:1")
	_, platforms := reg.PushIndex(t, "acme/web:2")
	old := reg.PushImage(t, "acme/old:v0")
	reg.PushImage(t, "acme/never:latest")
	reg.PushImage(t, "acme/never:extra")
	reg.PushImage(t, "acme/never:more")
	reg.PushImage(t, "team/x:1") // excluded by the glob

	regs, err := correlate.Parse([]byte(fmt.Sprintf(`registries:
  - name: local
    kind: oci
    url: http://%s
    tls: {insecure: true}
    auth: {username: ci, password_env: PW}
    repositories: {exclude: ["team/*"]}
    page_size: 2
`, reg.Host)), func(k string) string { return map[string]string{"PW": "pw"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	st := openStore(t, clk)
	promReg := prometheus.NewRegistry()
	m := correlate.NewMetrics(promReg)
	cor, err := correlate.New(ctx, st, regs, quiet, m, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	pingsBefore := reg.Requests("GET", "ping") // the pushes above pinged too
	if err := cor.Refresh(ctx, "local"); err != nil {
		t.Fatal(err)
	}
	// 3 repositories in pages of 2, and acme/never's 3 tags in pages of 2: the Link headers were followed.
	if pages.Load() < 2+2 {
		t.Fatalf("%d pages served; the lists were not paginated", pages.Load())
	}
	// One token handshake (ping) for the catalog and one per repository, not one per tag.
	if n := reg.Requests("GET", "ping") - pingsBefore; n > 1+3 {
		t.Fatalf("%d pings for 3 repositories", n)
	}
	h := api.New(st, quiet, auth.New(st, auth.ModeNone))
	host := reg.Host
	got := usages(t, h, "registry=local")
	want := map[string]string{
		host + "/acme/web:1": store.UsageNeverSeen, host + "/acme/web:2": store.UsageNeverSeen, host + "/acme/old:v0": store.UsageNeverSeen,
		host + "/acme/never:latest": store.UsageNeverSeen, host + "/acme/never:extra": store.UsageNeverSeen, host + "/acme/never:more": store.UsageNeverSeen,
	}
	if !mapsEqual(got, want) {
		t.Fatalf("listed:\n got %v\nwant %v", got, want)
	}
	if v := value(m.Artifacts("local")); v != 6 {
		t.Fatalf("artifacts listed metric %v", v)
	}

	// Run web:1, web:2's amd64 platform manifest (the node reports it, not the index), and acme/old long ago.
	c := enrol(t, st, "prod")
	now := clk.Now()
	run(t, st, c, "p1", "node-a", host+"/acme/web:1", web1, now, false)
	run(t, st, c, "p2", "node-b", host+"/acme/web:2", platforms[0], now, false)
	run(t, st, c, "p3", "node-a", host+"/acme/old:v0", old, now.Add(-40*24*time.Hour), false)
	run(t, st, c, "p3", "node-a", host+"/acme/old:v0", old, now.Add(-40*24*time.Hour+time.Minute), true)
	got = usages(t, h, "registry=local")
	want[host+"/acme/web:1"], want[host+"/acme/web:2"], want[host+"/acme/old:v0"] = store.UsageInUse, store.UsageInUse, store.UsageUnused
	if !mapsEqual(got, want) {
		t.Fatalf("after running:\n got %v\nwant %v", got, want)
	}
	if u := usages(t, h, "registry=local&since=60d&usage=recently_used"); len(u) != 1 || u[host+"/acme/old:v0"] == "" {
		t.Fatalf("since=60d: %v", u)
	}
	// The cleanup candidates as CSV: every page, escaped.
	rec := get(t, h, "/api/v1/artifacts.csv?registry=local&usage=unused,never_seen&sort=ref")
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("content type %q", ct)
	}
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+4 || rows[0][0] != "registry" || rows[1][4] != host+"/acme/never:extra" || rows[4][4] != host+"/acme/old:v0" {
		t.Fatalf("csv: %v", rows)
	}

	// Delete a tag: the next refresh marks it deleted (gone from the list).
	reg.Delete(t, "acme/never:extra")
	clk.Add(time.Minute)
	if err := cor.Refresh(ctx, "local"); err != nil {
		t.Fatal(err)
	}
	got = usages(t, h, "registry=local")
	delete(want, host+"/acme/never:extra")
	if !mapsEqual(got, want) {
		t.Fatalf("after deleting a tag:\n got %v\nwant %v", got, want)
	}
	var deleted *time.Time
	if err := storetest.SQL(t, st).QueryRow(ctx, "SELECT deleted_at FROM registry_artifacts WHERE tag = 'extra'").Scan(&deleted); err != nil || deleted == nil {
		t.Fatalf("deleted_at %v %v", deleted, err)
	}

	// The registry goes down: the refresh fails, the status says why, the last listing stays.
	reg.Stop()
	clk.Add(time.Minute)
	if err := cor.Refresh(ctx, "local"); err == nil {
		t.Fatal("refresh of a stopped registry succeeded")
	}
	if got = usages(t, h, "registry=local"); !mapsEqual(got, want) {
		t.Fatalf("after the registry went down:\n got %v\nwant %v", got, want)
	}
	var regsBody struct {
		Items []struct {
			Name, Status string
			Error        *string
			Artifacts    int `json:"artifacts"`
			InUse        int `json:"in_use"`
		} `json:"items"`
	}
	if err := json.Unmarshal(get(t, h, "/api/v1/registries").Body.Bytes(), &regsBody); err != nil {
		t.Fatal(err)
	}
	if r := regsBody.Items; len(r) != 1 || r[0].Status != store.RegistryError || r[0].Error == nil || !strings.Contains(*r[0].Error, "catalog") ||
		r[0].Artifacts != 5 || r[0].InUse != 2 {
		t.Fatalf("registries: %+v", regsBody)
	}
	if v := value(m.Refreshes("local", store.RegistryError)); v != 1 {
		t.Fatalf("error refreshes metric %v", v)
	}
}

// value reads a gauge's or counter's value.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// fakeArtifactory stands in for JFrog Artifactory, which cannot run here (it is a licensed Java product, not a
// Go module or a Debian package). It is as thin as it can be: its docker API (/api/docker/<key>/v2/…) is a
// real OCI registry (registrytest) behind a path rewrite, with key "<key>" holding the registry's "<key>/…"
// repositories; only the set-item-properties call (PUT /api/storage/…) is fake, recorded for the test to read.
// It checks the access token on every call, as Artifactory does.
type fakeArtifactory struct {
	srv    *httptest.Server
	reg    *registrytest.Registry
	token  string
	mu     sync.Mutex
	puts   []*url.URL
	failed atomic.Bool                    // the first PUT answers 503, to exercise the retry
	props  map[string]map[string][]string // item path → properties the get-item-properties call answers
}

func startFakeArtifactory(t *testing.T, reg *registrytest.Registry, token string) *fakeArtifactory {
	f := &fakeArtifactory{reg: reg, token: token, props: map[string]map[string][]string{}}
	inner := "http://" + reg.Host
	mux := http.NewServeMux()
	mux.HandleFunc("/artifactory/api/docker/{key}/v2/{rest...}", func(w http.ResponseWriter, r *http.Request) {
		key, rest := r.PathValue("key"), r.PathValue("rest")
		target := inner + "/v2/" + key + "/" + rest
		if rest == "_catalog" {
			target = inner + "/v2/_catalog"
		}
		target += "?" + r.URL.RawQuery
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target, nil)
		req.Header = r.Header.Clone()
		req.Header.Del("Authorization")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if rest == "_catalog" && resp.StatusCode == 200 {
			var cat struct{ Repositories []string }
			_ = json.Unmarshal(body, &cat)
			var mine []string
			for _, r := range cat.Repositories {
				if s, ok := strings.CutPrefix(r, key+"/"); ok {
					mine = append(mine, s)
				}
			}
			body, _ = json.Marshal(map[string]any{"repositories": mine})
		}
		for k, vs := range resp.Header {
			if k != "Content-Length" {
				w.Header()[k] = vs
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	})
	mux.HandleFunc("PUT /artifactory/api/storage/{path...}", func(w http.ResponseWriter, r *http.Request) {
		if f.failed.CompareAndSwap(false, true) {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		f.mu.Lock()
		u := *r.URL
		f.puts = append(f.puts, &u)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /artifactory/api/storage/{path...}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		p, ok := f.props[r.PathValue("path")]
		f.mu.Unlock()
		if _, asked := r.URL.Query()["properties"]; !asked || !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"errors":[{"status":404,"message":"No properties could be found."}]}`)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.org.jfrog.artifactory.storage.ItemProperties+json")
		_ = json.NewEncoder(w).Encode(map[string]any{"properties": p, "uri": f.srv.URL + r.URL.Path})
	})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"status":401,"message":"Bad credentials"}]}`)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeArtifactory) Puts() []*url.URL {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.puts)
}

// TestArtifactoryCorrelationAndFeedback lists an Artifactory through its docker API per repository key and
// writes last-seen, clusters and node counts back as properties of the tags in use; an OCI registry with the
// same content gets nothing written.
func TestArtifactoryCorrelationAndFeedback(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t)
	web := reg.PushImage(t, "docker-local/acme/web:1")
	reg.PushImage(t, "docker-local/acme/idle:1")
	reg.PushImage(t, "other-key/acme/web:1") // another key, not configured
	art := startFakeArtifactory(t, reg, "tok-123")
	regs, err := correlate.Parse([]byte(fmt.Sprintf(`registries:
  - name: jfrog
    kind: artifactory
    url: %s/artifactory
    pull_host: art.example
    tls: {insecure: true}
    repo_keys: [docker-local]
    auth: {token_env: ART_TOKEN}
    feedback: true
  - name: plain
    kind: oci
    url: http://%s
    tls: {insecure: true}
`, art.srv.URL, reg.Host)), func(k string) string { return map[string]string{"ART_TOKEN": "tok-123"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	st := openStore(t, clk)
	cor, err := correlate.New(ctx, st, regs, quiet, nil, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	prod, stage := enrol(t, st, "prod,eu"), enrol(t, st, "stage")
	now := clk.Now()
	// Pulled by the repository-path method: art.example/<key>/<image>.
	run(t, st, prod, "p1", "node-a", "art.example/docker-local/acme/web:1", web, now, false)
	run(t, st, prod, "p2", "node-b", "art.example/docker-local/acme/web:1", web, now, false)
	run(t, st, stage, "p1", "node-a", "art.example/docker-local/acme/web:1", web, now, false)
	if err := cor.Refresh(ctx, "jfrog"); err != nil {
		t.Fatal(err)
	}
	// The plain OCI registry is listed too, and must not be written to: count its writes around the refresh.
	writes := func() (n int64) {
		for _, m := range []string{"PUT", "POST", "PATCH", "DELETE"} {
			for _, k := range []string{"manifests", "blobs", "other", "ping", "token"} {
				n += reg.Requests(m, k)
			}
		}
		return n
	}
	before := writes()
	if err := cor.Refresh(ctx, "plain"); err != nil {
		t.Fatal(err)
	}
	if after := writes(); after != before {
		t.Fatalf("%d write requests reached the plain OCI registry during its refresh", after-before)
	}
	h := api.New(st, quiet, auth.New(st, auth.ModeNone))
	got := usages(t, h, "registry=jfrog")
	if !mapsEqual(got, map[string]string{"art.example/docker-local/acme/web:1": store.UsageInUse, "art.example/docker-local/acme/idle:1": store.UsageNeverSeen}) {
		t.Fatalf("jfrog: %v", got)
	}
	puts := art.Puts()
	if len(puts) != 1 {
		t.Fatalf("%d property writes: %v", len(puts), puts)
	}
	p := puts[0]
	// Artifactory's format: properties=k=v;k=v1,v2&recursive=0, ';' separating properties (Go's url.Query
	// refuses ';', so the query is split by hand), ',' inside a value escaped by a backslash.
	var rawProps, recursive string
	for _, part := range strings.Split(p.RawQuery, "&") {
		if v, ok := strings.CutPrefix(part, "properties="); ok {
			rawProps = v
		}
		if v, ok := strings.CutPrefix(part, "recursive="); ok {
			recursive = v
		}
	}
	if p.Path != "/artifactory/api/storage/docker-local/acme/web/1" || recursive != "0" {
		t.Fatalf("PUT %s", p)
	}
	props := map[string]string{}
	for _, kv := range strings.Split(rawProps, ";") {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		if props[k], err = url.QueryUnescape(v); err != nil {
			t.Fatal(err)
		}
	}
	if props[correlate.PropLastSeen] != now.Format(time.RFC3339) || props[correlate.PropNodes] != "3" ||
		props[correlate.PropClusters] != `prod\,eu,stage` {
		t.Fatalf("properties %v (raw %s)", props, p.RawQuery)
	}
	// Nothing changed: the next refresh writes nothing.
	if err := cor.Refresh(ctx, "jfrog"); err != nil {
		t.Fatal(err)
	}
	if n := len(art.Puts()); n != 1 {
		t.Fatalf("%d writes after an unchanged refresh", n)
	}
	// The plain OCI registry lists the same images under their full names.
	if got := usages(t, h, "registry=plain"); len(got) != 3 || got[reg.Host+"/docker-local/acme/web:1"] != store.UsageInUse {
		t.Fatalf("plain: %v", got)
	}
	// A wrong token: the listing fails with the registry's answer, the status says so.
	bad := regs[0]
	bad.Auth = correlate.Credentials{Token: "wrong"}
	cor2, err := correlate.New(ctx, st, []correlate.Registry{bad}, quiet, nil, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := cor2.Refresh(ctx, "jfrog"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
}
