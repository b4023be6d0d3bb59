package api

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// Paging bounds.
const (
	DefaultLimit = 50
	MaxLimit     = 500
	MaxOffset    = 1_000_000
)

// Usages are the artifact usage filter's values; "all" (or no filter) means every one.
var Usages = []string{store.UsageInUse, store.UsageRecentlyUsed, store.UsageUnused, store.UsageNeverSeen}

// MaxSince bounds the since parameter's age: ten years.
const MaxSince = 3650 * 24 * time.Hour

// Severities and Verdicts are the filter values, in the record contract's order (records.Severities, lowest
// first; records.Verdicts, best first).
var (
	Severities = records.Severities
	Verdicts   = records.Verdicts
)

// listParams says which query parameters each list endpoint takes and the sort orders it offers (the first is
// the default). The OpenAPI test checks openapi.yaml against this table.
var listParams = map[string]struct {
	params []string
	sorts  []string
}{
	"images":    {[]string{"cluster", "namespace", "severity", "verdict", "q", "sort", "limit", "offset"}, []string{store.SortRisk, store.SortLastSeen, store.SortDigest}},
	"workloads": {[]string{"cluster", "namespace", "severity", "verdict", "sort", "limit", "offset"}, []string{store.SortRisk, store.SortName}},
	"artifacts": {[]string{"cluster", "namespace", "severity", "verdict", "registry", "usage", "since", "sort", "limit", "offset"},
		[]string{store.SortLastSeen, store.SortRef, store.SortRegistry, store.SortOldest}},
	// The CSV export takes the list's filters and sorts, and no paging: it is every row.
	"artifacts.csv": {[]string{"cluster", "namespace", "severity", "verdict", "registry", "usage", "since", "sort"},
		[]string{store.SortLastSeen, store.SortRef, store.SortRegistry, store.SortOldest}},
	"clusters": {[]string{"sort", "limit", "offset"}, []string{store.SortName}},
	// Vulnerabilities are ranked one way (loaded first, then severity: store.ListVulnerabilities).
	"vulnerabilities":     {[]string{"cluster", "namespace", "digest", "severity", "reachability", "fix", "q", "limit", "offset"}, nil},
	"vulnerabilities.csv": {[]string{"cluster", "namespace", "digest", "severity", "reachability", "fix", "q"}, nil},
	// Placement findings are ranked one way (severity, then newest: store.ListPlacementFindings).
	"placement/findings": {[]string{"cluster", "namespace", "severity", "digest", "rule", "limit", "offset"}, nil},
	// Provenance findings are ranked one way (severity, then newest: store.ListProvenanceFindings).
	"provenance/findings": {[]string{"cluster", "namespace", "severity", "rule", "finding", "limit", "offset"}, nil},
	// Drift findings are ranked one way (severity, then the most recently seen: store.ListDriftFindings).
	"drift/findings": {[]string{"cluster", "severity", "digest", "drift", "allowed", "limit", "offset"}, nil},
}

var (
	namespaceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	registryRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$`)
	digestRE    = regexp.MustCompile(`^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$`)
)

// ParamError is a bad request parameter; its message names the parameter and what is allowed.
type ParamError struct{ Msg string }

func (e *ParamError) Error() string { return e.Msg }

func paramErr(format string, a ...any) error { return &ParamError{Msg: fmt.Sprintf(format, a...)} }

// ParseList reads the query parameters of list endpoint into a store filter. Unknown parameters, repeated
// parameters and values outside what the endpoint takes are errors that name the parameter.
func ParseList(endpoint string, q url.Values) (store.Filter, error) {
	if err := checkParams(endpoint, q); err != nil {
		return store.Filter{}, err
	}
	f := store.Filter{Limit: DefaultLimit}
	if err := applyParams(q, &f, listRules(listParams[endpoint].sorts)); err != nil {
		return store.Filter{}, err
	}
	return f, nil
}

// listRules are the list endpoints' parameters; sorts are the endpoint's sort orders.
func listRules(sorts []string) []paramRule[store.Filter] {
	return []paramRule[store.Filter]{
		{"limit", func(f *store.Filter, v string) (err error) { f.Limit, err = intParam("limit", v, 1, MaxLimit); return }},
		{"offset", func(f *store.Filter, v string) (err error) {
			f.Offset, err = intParam("offset", v, 0, MaxOffset)
			return
		}},
		{"sort", func(f *store.Filter, v string) error {
			if !slices.Contains(sorts, v) {
				return paramErr("sort %q is not one of %s", clip(v), strings.Join(sorts, ", "))
			}
			f.Sort = v
			return nil
		}},
		{"cluster", func(f *store.Filter, v string) (err error) { f.Cluster, err = clusterParam(v); return }},
		{"namespace", func(f *store.Filter, v string) (err error) { f.Namespace, err = namespaceParam(v); return }},
		{"q", func(f *store.Filter, v string) (err error) { f.Search, err = searchParam(v); return }},
		{"digest", func(f *store.Filter, v string) (err error) { f.Digest, err = ParseDigest(v); return }},
		{"registry", func(f *store.Filter, v string) error {
			if !registryRE.MatchString(v) {
				return paramErr("registry %q is not a registry host[:port]", clip(v))
			}
			f.Registry = v
			return nil
		}},
		{"usage", func(f *store.Filter, v string) (err error) {
			if v == "all" {
				return nil
			}
			if f.Usage, err = setParam("usage", v, Usages); err != nil {
				return paramErr("%s, or all", err.Error())
			}
			return nil
		}},
		{"since", func(f *store.Filter, v string) (err error) { f.Since, f.SinceAge, err = parseSince(v); return }},
		{"severity", func(f *store.Filter, v string) (err error) {
			f.Severities, err = setParam("severity", v, Severities)
			return
		}},
		{"verdict", func(f *store.Filter, v string) (err error) {
			f.Verdicts, err = setParam("verdict", v, Verdicts)
			return
		}},
	}
}

// A paramRule parses one query parameter into a filter of type F.
type paramRule[F any] struct {
	name string
	set  func(f *F, v string) error
}

// applyParams sets f from every rule whose parameter q gives, in the rules' order; the first bad value is the
// error. checkParams has already refused what the endpoint does not take.
func applyParams[F any](q url.Values, f *F, rules []paramRule[F]) error {
	for _, r := range rules {
		if v, ok := get(q, r.name); ok {
			if err := r.set(f, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkParams refuses the parameters endpoint does not take, and any given twice.
func checkParams(endpoint string, q url.Values) error {
	spec, ok := listParams[endpoint]
	if !ok {
		return fmt.Errorf("api: no list endpoint %q", endpoint)
	}
	var unknown []string
	for k, vs := range q {
		if !slices.Contains(spec.params, k) {
			unknown = append(unknown, fmt.Sprintf("%q", clip(k)))
			continue
		}
		if len(vs) > 1 {
			return paramErr("%s is given %d times; give it once (lists are comma-separated)", k, len(vs))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return paramErr("unknown query parameter(s) %s; %s takes %s", strings.Join(unknown, ", "), endpoint, strings.Join(spec.params, ", "))
	}
	return nil
}

func get(q url.Values, k string) (string, bool) {
	vs, ok := q[k]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// clip shortens a value for an error message.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) > 64 {
		return string([]rune(s)[:64]) + "…"
	}
	return s
}

func intParam(name, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, paramErr("%s %q is not an integer from %d to %d", name, clip(v), lo, hi)
	}
	return n, nil
}

func setParam(name, v string, allowed []string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if !slices.Contains(allowed, s) {
			return nil, paramErr("%s %q is not one of %s (comma-separate several)", name, clip(s), strings.Join(allowed, ", "))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// parseSince reads the since parameter: an age ("30d", "72h") or a time (RFC 3339).
func parseSince(v string) (time.Time, time.Duration, error) {
	bad := paramErr("since %q is not an age (\"30d\", \"72h\", up to 3650d) or an RFC 3339 time", clip(v))
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		if t.Year() < 1970 || t.Year() > 9999 {
			return time.Time{}, 0, bad
		}
		return t.UTC(), 0, nil
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || n == "" || n[0] == '+' {
			return time.Time{}, 0, bad
		}
		if days > int(MaxSince/(24*time.Hour)) {
			return time.Time{}, 0, bad
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < 0 || d > MaxSince {
			return time.Time{}, 0, bad
		}
	}
	if d == 0 {
		return time.Time{}, 0, paramErr("since %q: an age of zero leaves nothing recently used; give a positive age", clip(v))
	}
	return time.Time{}, d, nil
}

// checkClusterRef accepts a cluster uid or name: printable text up to 253 bytes.
func checkClusterRef(name, v string) error {
	if v == "" || len(v) > 253 || !utf8.ValidString(v) {
		return paramErr("%s must be a cluster uid or name of 1 to 253 bytes of UTF-8", name)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return paramErr("%s %q contains a control character", name, clip(v))
		}
	}
	return nil
}

// clusterParam is the cluster query parameter: a cluster uid or name.
func clusterParam(v string) (string, error) { return v, checkClusterRef("cluster", v) }

// namespaceParam is the namespace query parameter: a Kubernetes namespace name.
func namespaceParam(v string) (string, error) {
	if !namespaceRE.MatchString(v) {
		return "", paramErr("namespace %q is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63)", clip(v))
	}
	return v, nil
}

// searchParam is the q query parameter (checkSearch).
func searchParam(v string) (string, error) { return v, checkSearch(v) }

// ParseDigest checks an image digest path parameter.
func ParseDigest(v string) (string, error) {
	if !digestRE.MatchString(v) {
		return "", paramErr("digest %q is not an image digest (sha256:<64 lower-case hex>)", clip(v))
	}
	return v, nil
}

// MaxSearch bounds the q parameter: a reference is at most a few hundred bytes, and a longer pattern only costs.
const MaxSearch = 256

// checkSearch: q is a substring of a reference or a digest, so printable text without control characters.
func checkSearch(v string) error {
	if v == "" || len(v) > MaxSearch {
		return paramErr("q must be 1 to %d bytes (a part of an image reference or digest)", MaxSearch)
	}
	if !utf8.ValidString(v) {
		return paramErr("q is not valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return paramErr("q %q holds a control character", clip(v))
		}
	}
	return nil
}
