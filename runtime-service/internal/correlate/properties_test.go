package correlate_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/runtime-service/internal/correlate"
	"github.com/runtrust/runtrust/runtime-service/internal/placement"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

func TestParseProperties(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string][]string
	}{
		{`{"properties": {"runtrust.allowed_clusters": ["prod/shop", "stage"]}, "uri": "x"}`,
			map[string][]string{"runtrust.allowed_clusters": {"prod/shop", "stage"}}},
		{`{"uri": "x"}`, map[string][]string{}},
		{`{"properties": {}}`, map[string][]string{}},
	} {
		got, err := correlate.ParseProperties([]byte(tc.in))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseProperties(%s) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{``, `[]`, `{"properties": {"a": "b"}}`, `{"properties": [1]}`} {
		if _, err := correlate.ParseProperties([]byte(in)); err == nil || !strings.Contains(err.Error(), "not an item properties answer") {
			t.Errorf("ParseProperties(%q): %v", in, err)
		}
	}
}

func FuzzParseProperties(f *testing.F) {
	f.Add([]byte(`{"properties": {"k": ["v"]}}`))
	f.Add([]byte(`{"properties": null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := correlate.ParseProperties(b)
		if err == nil && p == nil {
			t.Fatal("nil properties without an error")
		}
	})
}

// TestArtifactoryPropertiesDecidePlacement: a placement rule taking its places from the Artifactory property
// runtrust.allowed_clusters of the tag an image runs under: read with the listing (the fake Artifactory's
// get-item-properties), the container in an allowed cluster is allowed, the one elsewhere a finding; a changed
// property is read at the next listing and decides again.
func TestArtifactoryPropertiesDecidePlacement(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t)
	web := reg.PushImage(t, "docker-local/acme/web:1")
	art := startFakeArtifactory(t, reg, "tok-1")
	art.props["docker-local/acme/web/1"] = map[string][]string{"runtrust.allowed_clusters": {"prod"}}
	regs, err := correlate.Parse([]byte(fmt.Sprintf(`registries:
  - {name: jfrog, kind: artifactory, url: %s/artifactory, pull_host: art.example, tls: {insecure: true},
     repo_keys: [docker-local], auth: {token_env: T}}
`, art.srv.URL)), func(string) string { return "tok-1" })
	if err != nil {
		t.Fatal(err)
	}
	pol, err := placement.Parse([]byte(`rules:
  - {name: by-property, match: {label: runtrust.allowed_clusters}, allow_from_label: runtrust.allowed_clusters}
`))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	st := storetest.Open(t, store.Options{Now: clk.Now, MaxConns: 4, Placement: pol})
	cor, err := correlate.New(ctx, st, regs, quiet, nil, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	cor.ReadProperties(true)
	prod, stage := enrol(t, st, "prod"), enrol(t, st, "stage")
	run(t, st, prod, "p1", "node-a", "art.example/docker-local/acme/web:1", web, clk.Now(), false)
	run(t, st, stage, "p1", "node-a", "art.example/docker-local/acme/web:1", web, clk.Now(), false)
	findings := func() []string {
		t.Helper()
		page, err := st.ListPlacementFindings(ctx, store.PlacementFilter{Filter: store.Filter{Limit: 10}})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range page.Items {
			out = append(out, d.ClusterName+"/"+d.Namespace+" "+d.Rule)
		}
		return out
	}
	// Before the listing nothing is known of the labels: pending, not a finding.
	if f := findings(); len(f) != 0 {
		t.Fatalf("before the listing: %v", f)
	}
	if err := cor.Refresh(ctx, "jfrog"); err != nil {
		t.Fatal(err)
	}
	if f := findings(); !reflect.DeepEqual(f, []string{"stage/shop by-property"}) {
		t.Fatalf("after the listing: %v", f)
	}
	d, err := st.GetImage(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, p := range d.Placements {
		status[p.ClusterName] = p.Placement.Status
	}
	if status["prod"] != placement.Allowed || status["stage"] != placement.Violation {
		t.Fatalf("image placements: %v", status)
	}
	art.mu.Lock()
	art.props["docker-local/acme/web/1"] = map[string][]string{"runtrust.allowed_clusters": {"prod", "stage/shop"}}
	art.mu.Unlock()
	if err := cor.Refresh(ctx, "jfrog"); err != nil {
		t.Fatal(err)
	}
	if f := findings(); len(f) != 0 {
		t.Fatalf("after the property allowed stage/shop: %v", f)
	}
}
