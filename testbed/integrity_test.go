package testbed

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
)

// TestDistributionImageIntegrity runs the built otelcol-runtrust with otlp → registrytrust → imageintegrity →
// file against a real registry on loopback (docker.io mirrored onto it, as a corporate mirror would be), and
// checks the verdicts in the file the exporter wrote.
func TestDistributionImageIntegrity(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("ci", "s3cret"))
	v1 := reg.PushImage(t, "shop/green-burrito:latest")
	v2 := reg.PushImage(t, "shop/green-burrito:latest")
	nginx := reg.PushImage(t, "dockerhub/library/nginx:1.25")
	creds := reg.DockerConfig(t, "ci", "s3cret")

	col := StartFilePipeline(t, fmt.Sprintf(`
  registrytrust:
    trusted_registries: [%q]
    mirrors:
      - source: docker.io
        mirror: %s/dockerhub
  imageintegrity:
    batch_deadline: 20s
    credentials:
      docker_config_files: [%s]`, reg.Host, reg.Host, creds),
		"registrytrust", "imageintegrity")

	forged := "sha256:" + strings.Repeat("0badc0de", 8)
	type sent struct{ image, running, policy string }
	batch := []sent{
		{reg.Host + "/shop/green-burrito:latest", reg.Ref("shop/green-burrito@" + v2), "Always"},
		{reg.Host + "/shop/green-burrito:latest", reg.Ref("shop/green-burrito@" + v1), "IfNotPresent"},
		{reg.Host + "/shop/green-burrito:latest", reg.Ref("shop/green-burrito@" + forged), "IfNotPresent"},
		{reg.Host + "/shop/gone:1", reg.Ref("shop/gone@" + v1), "IfNotPresent"},
		{"nginx:1.25", "docker.io/library/nginx@" + nginx, "IfNotPresent"},
	}
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(records.AttrK8sClusterName, "e2e")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, s := range batch {
		lr := lrs.AppendEmpty()
		lr.SetEventName(records.EventK8sContainer)
		lr.Attributes().PutStr(records.AttrContainerImageName, s.image)
		lr.Attributes().PutStr(records.AttrImageRunningDigest, s.running)
		lr.Attributes().PutStr(records.AttrImagePullPolicy, s.policy)
	}
	SendLogs(t, col.Endpoint, ld)
	got := WaitForRecords(t, col.File, len(batch), 60*time.Second)

	wants := []struct{ integrity, severity, expected string }{
		{records.IntegrityVerified, records.SeverityNone, v2},
		{records.IntegrityStaleTag, records.SeverityMedium, v2},
		{records.IntegrityDigestMismatch, records.SeverityCritical, v2},
		{records.IntegrityArtifactMissing, records.SeverityHigh, ""},
		{records.IntegrityVerified, records.SeverityNone, nginx},
	}
	for i, w := range wants {
		a := got[i].Attrs
		if a[records.AttrImageIntegrity] != w.integrity || a[records.AttrRiskSeverity] != w.severity {
			t.Errorf("record %d (%s @ %s): %s=%v %s=%v, want %s/%s; reasons %v", i, batch[i].image, batch[i].running,
				records.AttrImageIntegrity, a[records.AttrImageIntegrity], records.AttrRiskSeverity, a[records.AttrRiskSeverity],
				w.integrity, w.severity, a[records.AttrRiskReasons])
		}
		if w.expected != "" && a[records.AttrImageExpectedDigest] != w.expected {
			t.Errorf("record %d: expected digest %v, want %s", i, a[records.AttrImageExpectedDigest], w.expected)
		}
	}
	if hint, _ := got[1].Attrs[records.AttrImageRemediation].(string); !strings.Contains(hint, "IfNotPresent") {
		t.Errorf("stale_tag remediation = %q, want one about IfNotPresent", hint)
	}
	if got[4].Attrs[records.AttrImagePullRef] != reg.Ref("dockerhub/library/nginx:1.25") {
		t.Errorf("nginx was not asked at the mirror: %v", got[4].Attrs)
	}
}
