package api

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

func TestParseList(t *testing.T) {
	cases := []struct {
		endpoint, query string
		want            store.Filter
		err             string
	}{
		{"images", "", store.Filter{Limit: 50}, ""},
		{"images", "limit=500&offset=10&sort=last_seen", store.Filter{Limit: 500, Offset: 10, Sort: "last_seen"}, ""},
		{"images", "cluster=prod%20eu&namespace=kube-system", store.Filter{Limit: 50, Cluster: "prod eu", Namespace: "kube-system"}, ""},
		{"images", "severity=high,critical,high", store.Filter{Limit: 50, Severities: []string{"high", "critical"}}, ""},
		{"workloads", "verdict=stale_tag&sort=name", store.Filter{Limit: 50, Verdicts: []string{"stale_tag"}, Sort: "name"}, ""},
		{"artifacts", "registry=registry.corp.example:5000", store.Filter{Limit: 50, Registry: "registry.corp.example:5000"}, ""},
		{"clusters", "limit=1", store.Filter{Limit: 1}, ""},
		{"images", "limit=0", store.Filter{}, `limit "0" is not an integer from 1 to 500`},
		{"images", "limit=501", store.Filter{}, "limit"},
		{"images", "limit=1e3", store.Filter{}, "limit"},
		{"images", "offset=-1", store.Filter{}, `offset "-1"`},
		{"images", "offset=99999999999999999999", store.Filter{}, "offset"},
		{"images", "limit=1&limit=2", store.Filter{}, "limit is given 2 times"},
		{"images", "sort=name", store.Filter{}, `sort "name" is not one of risk, last_seen, digest`},
		{"images", "severity=", store.Filter{}, `severity "" is not one of`},
		{"images", "severity=High", store.Filter{}, `severity "High"`},
		{"images", "verdict=ok", store.Filter{}, `verdict "ok"`},
		{"images", "namespace=Kube_System", store.Filter{}, "not a Kubernetes namespace name"},
		{"images", "namespace=" + strings.Repeat("a", 64), store.Filter{}, "namespace"},
		{"images", "cluster=", store.Filter{}, "cluster must be"},
		{"images", "cluster=a%00b", store.Filter{}, "control character"},
		{"images", "cluster=%ff", store.Filter{}, "UTF-8"},
		{"images", "registry=ghcr.io", store.Filter{}, `unknown query parameter(s) "registry"`},
		{"clusters", "namespace=x&bogus=1", store.Filter{}, `unknown query parameter(s) "bogus", "namespace"`},
		{"artifacts", "registry=https://ghcr.io", store.Filter{}, "not a registry host"},
		{"artifacts", "usage=unused,never_seen&since=90d&sort=oldest", store.Filter{Limit: 50, Usage: []string{"unused", "never_seen"}, SinceAge: 90 * 24 * time.Hour, Sort: "oldest"}, ""},
		{"artifacts", "usage=all&since=72h", store.Filter{Limit: 50, SinceAge: 72 * time.Hour}, ""},
		{"artifacts", "since=2026-01-02T03:04:05Z", store.Filter{Limit: 50, Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, ""},
		{"artifacts.csv", "usage=in_use&sort=registry&registry=corp", store.Filter{Limit: 50, Usage: []string{"in_use"}, Sort: "registry", Registry: "corp"}, ""},
		{"artifacts.csv", "limit=10", store.Filter{}, `unknown query parameter(s) "limit"`},
		{"artifacts", "usage=idle", store.Filter{}, `usage "idle" is not one of in_use, recently_used, unused, never_seen`},
		{"artifacts", "usage=all,in_use", store.Filter{}, `usage "all"`},
		{"artifacts", "since=0d", store.Filter{}, "an age of zero"},
		{"artifacts", "since=-1h", store.Filter{}, `since "-1h" is not an age`},
		{"artifacts", "since=3651d", store.Filter{}, "since"},
		{"artifacts", "since=%2B5d", store.Filter{}, "since"},
		{"artifacts", "since=yesterday", store.Filter{}, "since"},
		{"images", "usage=in_use", store.Filter{}, `unknown query parameter(s) "usage"`},
		{"images", "q=acme%2Fpay&cluster=a", store.Filter{Limit: 50, Search: "acme/pay", Cluster: "a"}, ""},
		{"images", "q=", store.Filter{}, "q must be 1 to 256 bytes"},
		{"images", "q=" + strings.Repeat("a", 257), store.Filter{}, "q must be"},
		{"images", "q=a%0Ab", store.Filter{}, "control character"},
		{"images", "q=%ff", store.Filter{}, "q is not valid UTF-8"},
		{"workloads", "q=x", store.Filter{}, `unknown query parameter(s) "q"`},
	}
	for _, c := range cases {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseList(c.endpoint, q)
		if c.err != "" {
			var pe *ParamError
			if err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s?%s: err %v; want a parameter error containing %q", c.endpoint, c.query, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s?%s: %v", c.endpoint, c.query, err)
			continue
		}
		if got.Limit != c.want.Limit || got.Offset != c.want.Offset || got.Sort != c.want.Sort || got.Cluster != c.want.Cluster ||
			got.Namespace != c.want.Namespace || got.Registry != c.want.Registry || !slices.Equal(got.Usage, c.want.Usage) ||
			!got.Since.Equal(c.want.Since) || got.SinceAge != c.want.SinceAge ||
			!slices.Equal(got.Severities, c.want.Severities) || !slices.Equal(got.Verdicts, c.want.Verdicts) {
			t.Errorf("%s?%s = %+v; want %+v", c.endpoint, c.query, got, c.want)
		}
	}
}

func TestParseDigest(t *testing.T) {
	good := "sha256:" + strings.Repeat("0", 64)
	if d, err := ParseDigest(good); err != nil || d != good {
		t.Fatal(d, err)
	}
	for _, bad := range []string{"", "sha256:", "sha256:" + strings.Repeat("A", 64), "md5:abc", good + "0", "nginx@" + good} {
		if _, err := ParseDigest(bad); err == nil {
			t.Errorf("ParseDigest(%q) accepted", bad)
		}
	}
}

var endpoints = []string{"images", "workloads", "artifacts", "clusters", "artifacts.csv"}

// queried are the endpoints FuzzAPIQuery sends queries to: ParseList's, then ParseVulnList's.
var queried = append(slices.Clone(endpoints), "vulnerabilities", "vulnerabilities.csv")

// FuzzParseList: for any query string, ParseList either refuses with a parameter error or returns a filter
// within the documented bounds, with only the values the filters allow.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{"", "limit=10&offset=5", "severity=high,critical", "verdict=stale_tag", "namespace=a-b",
		"cluster=%E2%9C%93", "registry=ghcr.io:443", "sort=risk", "limit=1&limit=1", "x=%zz", "offset=+1",
		"usage=unused,never_seen&since=30d", "since=2026-01-02T03:04:05Z", "usage=all", "since=1h30m", "sort=oldest", "q=nginx", "q=%25_%5C", "q=sha256%3Aab"} {
		for i := range endpoints {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		endpoint := endpoints[int(which)%len(endpoints)]
		got, err := ParseList(endpoint, q)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("not a parameter error: %v", err)
			}
			return
		}
		if got.Limit < 1 || got.Limit > MaxLimit || got.Offset < 0 || got.Offset > MaxOffset {
			t.Fatalf("paging out of bounds: %+v", got)
		}
		for _, s := range got.Severities {
			if !slices.Contains(Severities, s) {
				t.Fatalf("severity %q", s)
			}
		}
		for _, v := range got.Verdicts {
			if !slices.Contains(Verdicts, v) {
				t.Fatalf("verdict %q", v)
			}
		}
		if got.Namespace != "" && !namespaceRE.MatchString(got.Namespace) {
			t.Fatalf("namespace %q", got.Namespace)
		}
		for _, u := range got.Usage {
			if !slices.Contains(Usages, u) {
				t.Fatalf("usage %q", u)
			}
		}
		if got.SinceAge < 0 || got.SinceAge > MaxSince || (got.SinceAge > 0 && !got.Since.IsZero()) {
			t.Fatalf("since %v / %v", got.Since, got.SinceAge)
		}
		if got.Sort != "" && !slices.Contains(listParams[endpoint].sorts, got.Sort) {
			t.Fatalf("sort %q", got.Sort)
		}
	})
}

// FuzzAPIQuery sends any query string to every list endpoint of a handler over a real store: the answer is 200
// or 400 (never a 500, whatever reaches the SQL), and always JSON.
func FuzzAPIQuery(f *testing.F) {
	for _, s := range []string{"", "cluster=prod&namespace=shop&severity=critical&verdict=digest_mismatch&limit=1&offset=1",
		"cluster=%27%3B%20DROP%20TABLE%20images%3B--", "cluster=%E2%9C%93", "namespace=a", "sort=last_seen", "registry=ghcr.io",
		"offset=1000000", "severity=none,low,medium,high,critical", "usage=unused,never_seen&since=1d&sort=oldest",
		"registry=corp&usage=in_use", "since=1970-01-01T00:00:00Z", "q=%27%3B--", "q=%25&cluster=prod", "q=a&namespace=shop&cluster=prod"} {
		for i := range queried {
			f.Add(uint8(i), s)
		}
	}
	for _, s := range []string{"severity=critical,unknown&reachability=loaded&fix=true", "fix=no", "digest=sha256%3A" + strings.Repeat("a", 64),
		"reachability=not_loaded,unknown&q=CVE-2024", "q=%27%3B--&namespace=shop"} {
		f.Add(uint8(len(queried)-2), s)
		f.Add(uint8(len(queried)-1), s)
	}
	h := seeded(f)
	f.Fuzz(func(t *testing.T, which uint8, raw string) {
		endpoint := queried[int(which)%len(queried)]
		u := &url.URL{Path: "/api/v1/" + endpoint, RawQuery: raw}
		req := httptest.NewRequest("GET", "/", nil)
		req.URL = u
		req.RequestURI = u.RequestURI()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("GET %s: %d %s", u, rec.Code, rec.Body)
		}
		if strings.HasSuffix(endpoint, ".csv") && rec.Code == 200 {
			if _, err := csv.NewReader(rec.Body).ReadAll(); err != nil {
				t.Fatalf("GET %s: not CSV: %v", u, err)
			}
			return
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("GET %s: not JSON: %s", u, rec.Body)
		}
	})
}

// FuzzPathParams: the path parameters (an image digest, a cluster uid or name) are accepted only in their
// documented shapes.
func FuzzPathParams(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("0", 64), "sha256:", "latest", "prod", "a\x00b", "\xff", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d, err := ParseDigest(v); err == nil && !digestRE.MatchString(d) {
			t.Fatalf("accepted digest %q", d)
		}
		if err := checkClusterRef("cluster", v); err == nil && (len(v) == 0 || len(v) > 253 || strings.ContainsRune(v, 0)) {
			t.Fatalf("accepted cluster %q", v)
		}
	})
}

func TestParseVulnList(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		query string
		want  store.VulnFilter
		err   string
	}{
		{"", store.VulnFilter{Limit: DefaultLimit}, ""},
		{"severity=critical,high,critical&reachability=loaded&fix=true&limit=5&offset=10",
			store.VulnFilter{Severities: []string{"critical", "high"}, Reachabilities: []string{"loaded"}, Fixable: &yes, Limit: 5, Offset: 10}, ""},
		{"fix=false&cluster=prod&namespace=shop&q=openssl", store.VulnFilter{Fixable: &no, Cluster: "prod", Namespace: "shop", Search: "openssl", Limit: DefaultLimit}, ""},
		{"digest=sha256:" + strings.Repeat("0", 64), store.VulnFilter{Digest: "sha256:" + strings.Repeat("0", 64), Limit: DefaultLimit}, ""},
		{"severity=none", store.VulnFilter{}, `severity "none" is not one of critical, high, medium, low, unknown`},
		{"reachability=maybe", store.VulnFilter{}, `reachability "maybe" is not one of loaded, not_loaded, unknown`},
		{"fix=1", store.VulnFilter{}, `fix "1" is not true`},
		{"digest=latest", store.VulnFilter{}, `digest "latest" is not an image digest`},
		{"sort=risk", store.VulnFilter{}, `unknown query parameter(s) "sort"`},
		{"limit=5", store.VulnFilter{Limit: 5}, ""},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseVulnList("vulnerabilities", q)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v; want one containing %q", tc.query, err, tc.err)
			}
			continue
		}
		sameFix := (got.Fixable == nil) == (tc.want.Fixable == nil) && (got.Fixable == nil || *got.Fixable == *tc.want.Fixable)
		gotFix, wantFix := got.Fixable, tc.want.Fixable
		got.Fixable, tc.want.Fixable = nil, nil // compared above, by value
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) || !sameFix {
			t.Errorf("%q: %+v (fix %v), %v; want %+v (fix %v)", tc.query, got, gotFix, err, tc.want, wantFix)
		}
	}
	if _, err := ParseVulnList("vulnerabilities.csv", url.Values{"limit": {"5"}}); err == nil {
		t.Error("the CSV export took limit; it has no paging")
	}
}

func FuzzParseVulnList(f *testing.F) {
	for _, s := range []string{"", "severity=critical,high&reachability=loaded&fix=true", "fix=TRUE", "q=%00", "digest=sha256%3Aab",
		"reachability=loaded,loaded", "namespace=a&cluster=%E2%9C%93&offset=1000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		got, err := ParseVulnList("vulnerabilities", q)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("not a parameter error: %v", err)
			}
			return
		}
		if got.Limit < 1 || got.Limit > MaxLimit || got.Offset < 0 || got.Offset > MaxOffset {
			t.Fatalf("paging out of bounds: %+v", got)
		}
		for _, s := range got.Severities {
			if !slices.Contains(VulnSeverities, s) {
				t.Fatalf("severity %q accepted", s)
			}
		}
		for _, r := range got.Reachabilities {
			if !slices.Contains(store.Reachabilities, r) {
				t.Fatalf("reachability %q accepted", r)
			}
		}
	})
}
