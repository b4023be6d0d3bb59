package imageintegrityprocessor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/runtrust/runtrust/internal/logstest"
	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/registry"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/internal/registryrule"
	"github.com/runtrust/runtrust/processors/imageintegrityprocessor/internal/metadata"
)

// testConfig is the default configuration with a generous batch deadline: tests that are not about the
// deadline must not depend on how loaded the machine is.
func testConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.BatchDeadline = 20 * time.Second
	cfg.RequestTimeout = 30 * time.Second
	return cfg
}

// shortCacheConfig is testConfig with answers kept for ttl and errors for 100ms, for tests that watch the cache
// expire.
func shortCacheConfig(ttl time.Duration) *Config {
	cfg := testConfig()
	cfg.Cache.TTL = ttl
	cfg.Cache.NegativeTTL = 100 * time.Millisecond
	return cfg
}

type harness struct {
	t    *testing.T
	p    processor.Logs
	sink *consumertest.LogsSink
}

func start(t *testing.T, cfg *Config) *harness {
	t.Helper()
	return startWith(t, cfg, processortest.NewNopSettings(metadata.Type))
}

func startWith(t *testing.T, cfg *Config, set processor.Settings) *harness {
	t.Helper()
	p, sink := logstest.StartProcessor(t, NewFactory(), set, cfg)
	return &harness{t: t, p: p, sink: sink}
}

// container is an inventory receiver's container record.
type container struct {
	image   string // container.image.name
	tag     string // container.image.tags[0], "" for none
	running string // runtrust.image.running_digest
	policy  string // runtrust.image.pull_policy
	extra   map[string]any
}

func logsOf(cs ...container) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i, c := range cs {
		lr := lrs.AppendEmpty()
		lr.SetEventName(records.EventK8sContainer)
		a := lr.Attributes()
		a.PutStr(records.AttrK8sPodName, fmt.Sprintf("pod-%d", i))
		a.PutStr(records.AttrContainerImageName, c.image)
		if c.tag != "" {
			a.PutEmptySlice(records.AttrContainerImageTags).AppendEmpty().SetStr(c.tag)
		}
		if c.running != "" {
			a.PutStr(records.AttrImageRunningDigest, c.running)
		}
		if c.policy != "" {
			a.PutStr(records.AttrImagePullPolicy, c.policy)
		}
		for k, v := range c.extra {
			_ = a.PutEmpty(k).FromRaw(v)
		}
	}
	return ld
}

// send runs one batch through the processor and returns the attributes of its records.
func (h *harness) send(cs ...container) []map[string]any {
	h.t.Helper()
	h.sink.Reset()
	require.NoError(h.t, h.p.ConsumeLogs(context.Background(), logsOf(cs...)))
	out := logstest.Attributes(h.sink.AllLogs()...)
	require.Len(h.t, out, len(cs))
	return out
}

func (h *harness) one(c container) map[string]any {
	h.t.Helper()
	return h.send(c)[0]
}

// eventually sends c until cond holds for its record (or fails after a generous time).
func (h *harness) eventually(c container, cond func(map[string]any) bool) map[string]any {
	h.t.Helper()
	var got map[string]any
	require.Eventually(h.t, func() bool {
		got = h.one(c)
		return cond(got)
	}, 30*time.Second, 50*time.Millisecond, "last record: %v", func() any { return got })
	return got
}

func verdictIs(v string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m[records.AttrImageIntegrity] == v }
}

func reasons(m map[string]any) string {
	rs, _ := m[records.AttrRiskReasons].([]any)
	var s []string
	for _, r := range rs {
		s = append(s, fmt.Sprint(r))
	}
	return strings.Join(s, "\n")
}

func assertVerdict(t *testing.T, m map[string]any, integrity, severity, expected string) {
	t.Helper()
	assert.Equal(t, integrity, m[records.AttrImageIntegrity], "record: %v", m)
	assert.Equal(t, severity, m[records.AttrRiskSeverity], "record: %v", m)
	if expected != "" {
		assert.Equal(t, expected, m[records.AttrImageExpectedDigest])
	}
	if integrity == records.IntegrityVerified {
		assert.NotContains(t, m, records.AttrRiskReasons)
	} else {
		assert.Contains(t, reasons(m), integrity+": ")
	}
}

// TestGreenBurrito is the story the product is for: v1 is pushed as :latest and runs, verified; then v2 is
// pushed as :latest, and the pod that still runs v1 (IfNotPresent) is a stale tag.
func TestGreenBurrito(t *testing.T) {
	reg := registrytest.Start(t)
	v1 := reg.PushImage(t, "shop/green-burrito:latest")

	cfg := shortCacheConfig(300 * time.Millisecond)
	h := start(t, cfg)
	pod := container{image: reg.Host + "/shop/green-burrito", tag: "latest",
		running: reg.Ref("shop/green-burrito@" + v1), policy: "IfNotPresent"}

	got := h.one(pod)
	assertVerdict(t, got, records.IntegrityVerified, records.SeverityNone, v1)
	assert.NotContains(t, got, records.AttrImageRemediation)
	checked, err := time.Parse(time.RFC3339, got[records.AttrImageRegistryCheckedAt].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), checked, time.Minute)

	v2 := reg.PushImage(t, "shop/green-burrito:latest")
	require.NotEqual(t, v1, v2)
	got = h.eventually(pod, verdictIs(records.IntegrityStaleTag))
	assertVerdict(t, got, records.IntegrityStaleTag, records.SeverityMedium, v2)
	assert.Contains(t, reasons(got), "now points at "+v2)
	assert.Contains(t, reasons(got), "runs "+v1)
	hint := got[records.AttrImageRemediation].(string)
	assert.Contains(t, hint, "IfNotPresent")
	assert.Contains(t, hint, "@"+v2)

	// The same stale pod with imagePullPolicy: Always gets the other hint.
	pod.policy = "Always"
	got = h.one(pod)
	assert.Equal(t, records.IntegrityStaleTag, got[records.AttrImageIntegrity])
	assert.Contains(t, got[records.AttrImageRemediation], "restart it")

	// A new pod on v2 is verified.
	got = h.one(container{image: reg.Host + "/shop/green-burrito", tag: "latest", running: reg.Ref("shop/green-burrito@" + v2)})
	assertVerdict(t, got, records.IntegrityVerified, records.SeverityNone, v2)
}

// TestDigestNeverHeld: the container runs a digest the repository never had — tampering, a poisoned cache, a
// spoofed registry.
func TestDigestNeverHeld(t *testing.T) {
	reg := registrytest.Start(t)
	v1 := reg.PushImage(t, "shop/cart:1.0")
	forged := "sha256:" + strings.Repeat("0badc0de", 8)
	// The forged image exists elsewhere in the registry: held by another repository is not held by this one.
	other := reg.PushImage(t, "evil/cart:1.0")

	h := start(t, testConfig())
	for _, running := range []string{reg.Ref("shop/cart@" + forged), reg.Ref("shop/cart@" + other), "docker-pullable://" + reg.Ref("shop/cart@"+forged)} {
		got := h.one(container{image: reg.Host + "/shop/cart:1.0", running: running, policy: "IfNotPresent"})
		assertVerdict(t, got, records.IntegrityDigestMismatch, records.SeverityCritical, v1)
		assert.Contains(t, reasons(got), "never held")
		assert.Contains(t, got[records.AttrImageRemediation], "compromised")
	}
	// As the inventory receiver writes it: running_digest is the bare digest, container.image.id what the
	// runtime reported. A repo@digest there makes the bare digest a repository digest, so: a mismatch.
	for _, imageID := range []string{reg.Ref("shop/cart@" + forged), "docker-pullable://" + reg.Ref("shop/cart@"+forged)} {
		got := h.one(container{image: reg.Host + "/shop/cart:1.0", running: forged, policy: "IfNotPresent",
			extra: map[string]any{records.AttrContainerImageID: imageID}})
		assertVerdict(t, got, records.IntegrityDigestMismatch, records.SeverityCritical, v1)
		assert.Contains(t, reasons(got), "never held")
	}
}

// TestTagDeleted: the tag is deleted from the registry while the image still runs.
func TestTagDeleted(t *testing.T) {
	reg := registrytest.Start(t)
	v1 := reg.PushImage(t, "shop/green-burrito:1.4.2")
	reg.Delete(t, "shop/green-burrito:1.4.2")

	h := start(t, testConfig())
	got := h.one(container{image: reg.Host + "/shop/green-burrito:1.4.2", running: reg.Ref("shop/green-burrito@" + v1)})
	assertVerdict(t, got, records.IntegrityArtifactMissing, records.SeverityHigh, "")
	assert.NotContains(t, got, records.AttrImageExpectedDigest)
	assert.Contains(t, reasons(got), `tag "1.4.2"`)
	assert.Contains(t, reasons(got), "is gone from the registry")

	// A repository that never existed is missing too.
	got = h.one(container{image: reg.Host + "/shop/deleted-long-ago:1", running: "sha256:" + strings.Repeat("ab", 32)})
	assertVerdict(t, got, records.IntegrityArtifactMissing, records.SeverityHigh, "")
}

// TestMultiArch: a tag that points at an index is verified when the node reports the index itself or one of
// its platform manifests; and the reverse, a tag on a platform manifest and a node reporting the index.
func TestMultiArch(t *testing.T) {
	reg := registrytest.Start(t)
	index, platforms := reg.PushIndex(t, "base/multi:1")
	cfg := shortCacheConfig(300 * time.Millisecond)
	h := start(t, cfg)

	for _, running := range []string{platforms[0], platforms[1], index} {
		got := h.one(container{image: reg.Host + "/base/multi:1", running: reg.Ref("base/multi@" + running)})
		assertVerdict(t, got, records.IntegrityVerified, records.SeverityNone, index)
	}

	// The reverse: the tag names the amd64 manifest, the runtime reports the index it came from.
	reg.Tag(t, "base/multi", "amd64-only", platforms[0])
	got := h.one(container{image: reg.Host + "/base/multi:amd64-only", running: reg.Ref("base/multi@" + index)})
	assertVerdict(t, got, records.IntegrityVerified, records.SeverityNone, platforms[0])

	// A platform manifest of an older index is stale, not a mismatch.
	reg.PushIndex(t, "base/multi:1")
	got = h.eventually(container{image: reg.Host + "/base/multi:1", running: platforms[1]}, func(m map[string]any) bool {
		return m[records.AttrImageIntegrity] != records.IntegrityVerified
	})
	assertVerdict(t, got, records.IntegrityStaleTag, records.SeverityMedium, "")
	assert.NotEqual(t, index, got[records.AttrImageExpectedDigest])
}

// TestPinnedReference: a reference pinned by digest is checked against the pin.
func TestPinnedReference(t *testing.T) {
	reg := registrytest.Start(t)
	v1 := reg.PushImage(t, "shop/api:2")
	index, platforms := reg.PushIndex(t, "shop/api:multi")
	cfg := shortCacheConfig(300 * time.Millisecond)
	h := start(t, cfg)

	got := h.one(container{image: reg.Host + "/shop/api@" + v1, running: reg.Ref("shop/api@" + v1)})
	assertVerdict(t, got, records.IntegrityVerified, records.SeverityNone, v1)
	got = h.one(container{image: reg.Host + "/shop/api:2@" + index, running: platforms[1]})
	assertVerdict(t, got, records.IntegrityVerified, records.SeverityNone, index)

	// Running something else the repository holds: not what the pin says.
	got = h.one(container{image: reg.Host + "/shop/api@" + v1, running: platforms[0]})
	assertVerdict(t, got, records.IntegrityStaleTag, records.SeverityMedium, v1)
	assert.Contains(t, got[records.AttrImageRemediation], "pinned")

	// The pin deleted from the registry.
	reg.Delete(t, "shop/api@"+v1)
	got = h.eventually(container{image: reg.Host + "/shop/api@" + v1, running: v1}, verdictIs(records.IntegrityArtifactMissing))
	assertVerdict(t, got, records.IntegrityArtifactMissing, records.SeverityHigh, v1)
	assert.Contains(t, reasons(got), "the pinned digest "+v1)
}

// TestBareImageID: a runtime that reports only an image id (the config digest) cannot be compared.
func TestBareImageID(t *testing.T) {
	reg := registrytest.Start(t)
	v1 := reg.PushImage(t, "shop/cart:1")
	h := start(t, testConfig())
	configDigest := "sha256:" + strings.Repeat("c0", 32)
	for _, running := range []string{configDigest, "docker://" + configDigest, strings.Repeat("c0", 32)} {
		got := h.one(container{image: reg.Host + "/shop/cart:1", running: running})
		assertVerdict(t, got, records.IntegrityUnverified, records.SeverityLow, v1)
		assert.Equal(t, records.IntegrityReasonImageID, got[records.AttrImageIntegrityReason])
		assert.Contains(t, reasons(got), "bare image id")
	}
	// container.image.id that is itself a bare id keeps it one.
	got := h.one(container{image: reg.Host + "/shop/cart:1", running: configDigest,
		extra: map[string]any{records.AttrContainerImageID: configDigest}})
	assert.Equal(t, records.IntegrityReasonImageID, got[records.AttrImageIntegrityReason])
	// A bare digest that is the repository's manifest digest is compared as one.
	got = h.one(container{image: reg.Host + "/shop/cart:1", running: v1})
	assertVerdict(t, got, records.IntegrityVerified, records.SeverityNone, v1)
}

// TestRegistryStopped: a registry that cannot be reached gives unverified with the reason and the age of the
// last good answer, never a mismatch.
func TestRegistryStopped(t *testing.T) {
	reg := registrytest.Start(t)
	v1 := reg.PushImage(t, "shop/cart:1")
	cfg := shortCacheConfig(200 * time.Millisecond)
	cfg.Cache.Refresh = false
	h := start(t, cfg)
	pod := container{image: reg.Host + "/shop/cart:1", running: v1}
	got := h.one(pod)
	assertVerdict(t, got, records.IntegrityVerified, records.SeverityNone, v1)
	goodAt := got[records.AttrImageRegistryCheckedAt]

	reg.Stop()
	got = h.eventually(pod, verdictIs(records.IntegrityUnverified))
	assertVerdict(t, got, records.IntegrityUnverified, records.SeverityLow, "")
	assert.Equal(t, records.IntegrityReasonUnreachable, got[records.AttrImageIntegrityReason])
	assert.Contains(t, reasons(got), "unreachable")
	assert.Contains(t, reasons(got), "connection refused")
	assert.Contains(t, reasons(got), "last good answer")
	assert.Equal(t, goodAt, got[records.AttrImageRegistryCheckedAt], "the age of the last good answer")

	// A registry that never answered has no last good answer.
	got = h.one(container{image: reg.Host + "/shop/other:1", running: v1})
	assert.Equal(t, records.IntegrityReasonUnreachable, got[records.AttrImageIntegrityReason])
	assert.NotContains(t, got, records.AttrImageRegistryCheckedAt)
}

// TestAuthRequired: a registry that requires credentials works with them (docker config.json, a pull secret
// with the token flow, an Artifactory-style access token, per-registry username and password) and says why
// without.
func TestAuthRequired(t *testing.T) {
	t.Run("basic/docker-config", func(t *testing.T) {
		reg := registrytest.Start(t, registrytest.WithBasicAuth("ci", "s3cret"))
		v1 := reg.PushImage(t, "private/app:1")
		pod := container{image: reg.Host + "/private/app:1", running: v1}

		got := start(t, testConfig()).one(pod)
		assertVerdict(t, got, records.IntegrityUnverified, records.SeverityLow, "")
		assert.Equal(t, records.IntegrityReasonUnauthorized, got[records.AttrImageIntegrityReason])
		assert.Contains(t, reasons(got), "requires credentials, and none are configured")

		cfg := testConfig()
		cfg.Credentials.DockerConfigFiles = []string{reg.DockerConfig(t, "ci", "s3cret")}
		assertVerdict(t, start(t, cfg).one(pod), records.IntegrityVerified, records.SeverityNone, v1)

		cfg = testConfig()
		cfg.Credentials.DockerConfigFiles = []string{reg.DockerConfig(t, "ci", "wrong")}
		got = start(t, cfg).one(pod)
		assert.Equal(t, records.IntegrityReasonUnauthorized, got[records.AttrImageIntegrityReason])
		assert.Contains(t, reasons(got), "refused the configured credentials")

		cfg = testConfig()
		cfg.Registries = []registry.HostConfig{{Host: reg.Host, Auth: registry.AuthConfig{Username: "ci",
			PasswordFile: registrytest.WriteFile(t, "password", "s3cret\n")}}}
		assertVerdict(t, start(t, cfg).one(pod), records.IntegrityVerified, records.SeverityNone, v1)
	})
	t.Run("token/pull-secret", func(t *testing.T) {
		reg := registrytest.Start(t, registrytest.WithTokenAuth("robot", "t0ken-pass"))
		v1 := reg.PushImage(t, "private/app:1")
		pod := container{image: reg.Host + "/private/app:1", running: v1}

		got := start(t, testConfig()).one(pod)
		assert.Equal(t, records.IntegrityReasonUnauthorized, got[records.AttrImageIntegrityReason], "record: %v", got)

		secret := reg.DockerConfig(t, "robot", "t0ken-pass") // a mounted .dockerconfigjson is a docker config.json
		cfg := testConfig()
		cfg.Credentials.PullSecretFiles = []string{secret}
		h := start(t, cfg)
		assertVerdict(t, h.one(pod), records.IntegrityVerified, records.SeverityNone, v1)
		// The bearer token is reused: a second lookup is one manifest request, no new token.
		tokens := reg.Requests("GET", "token")
		h.one(container{image: reg.Host + "/private/app:1@" + v1, running: v1})
		assert.Equal(t, tokens, reg.Requests("GET", "token"))
	})
	t.Run("artifactory-token", func(t *testing.T) {
		reg := registrytest.Start(t, registrytest.WithBasicAuth("admin", "unused"), registrytest.WithStaticToken("cmVmdGtu.artifactory"))
		v1 := reg.PushImage(t, "docker-local/app:1")
		cfg := testConfig()
		cfg.Registries = []registry.HostConfig{{Host: reg.Host, Auth: registry.AuthConfig{
			TokenFile: registrytest.WriteFile(t, "token.json", `{"token_id":"x","access_token":"cmVmdGtu.artifactory","expires_in":3600,"scope":"applied-permissions/user","token_type":"Bearer"}`),
		}}}
		got := start(t, cfg).one(container{image: reg.Host + "/docker-local/app:1", running: v1})
		assertVerdict(t, got, records.IntegrityVerified, records.SeverityNone, v1)
	})
}

// TestSlowRegistry: a registry that answers slowly does not stall the pipeline. The batch goes on at its
// deadline with unverified (timeout); the lookup completes into the cache, and a later batch gets the answer.
func TestSlowRegistry(t *testing.T) {
	reg := registrytest.Start(t)
	v1 := reg.PushImage(t, "shop/slow:1")
	const hold = 3 * time.Second
	reg.SetDelay(hold)

	cfg := testConfig()
	cfg.BatchDeadline = 200 * time.Millisecond
	h := start(t, cfg)
	pods := []container{
		{image: reg.Host + "/shop/slow:1", running: v1},
		{image: reg.Host + "/shop/slow:1", running: v1},
		{image: reg.Host + "/shop/slow", tag: "1", running: reg.Ref("shop/slow@" + v1)},
	}
	heads := reg.Requests("HEAD", "manifests") // the push made some
	began := time.Now()
	got := h.send(pods...)
	took := time.Since(began)
	assert.Less(t, took, hold/2, "the batch must go on at its deadline, not when the registry answers")
	for _, m := range got {
		assertVerdict(t, m, records.IntegrityUnverified, records.SeverityLow, "")
		assert.Equal(t, records.IntegrityReasonTimeout, m[records.AttrImageIntegrityReason])
		assert.Contains(t, reasons(m), "answer will be cached")
	}

	// Batches sent while the lookup is still in flight join it: still one manifest request for the tag.
	h.send(pods...)
	m := h.eventually(pods[0], verdictIs(records.IntegrityVerified))
	assertVerdict(t, m, records.IntegrityVerified, records.SeverityNone, v1)
	assert.GreaterOrEqual(t, time.Since(began), hold, "the answer cannot come before the registry gave it")
	assert.Equal(t, heads+1, reg.Requests("HEAD", "manifests"), "one lookup in flight per tag")

	// From the cache, at once.
	began = time.Now()
	for _, m := range h.send(pods...) {
		assert.Equal(t, records.IntegrityVerified, m[records.AttrImageIntegrity])
	}
	assert.Less(t, time.Since(began), hold/2)
}

// TestUnlistedRegistry: with check_unlisted_registries off, an unlisted registry is not asked.
func TestUnlistedRegistry(t *testing.T) {
	reg := registrytest.Start(t)
	v1 := reg.PushImage(t, "shop/cart:1")
	cfg := testConfig()
	cfg.CheckUnlistedRegistries = false
	cfg.Registries = []registry.HostConfig{{Host: "registry.corp.example"}}
	pushed := reg.Total()
	got := start(t, cfg).one(container{image: reg.Host + "/shop/cart:1", running: v1})
	assertVerdict(t, got, records.IntegrityUnverified, records.SeverityLow, "")
	assert.Equal(t, records.IntegrityReasonNotConfigured, got[records.AttrImageIntegrityReason])
	assert.Equal(t, pushed, reg.Total(), "an unlisted registry is not asked")

	cfg.Registries = append(cfg.Registries, registry.HostConfig{Host: reg.Host})
	got = start(t, cfg).one(container{image: reg.Host + "/shop/cart:1", running: v1})
	assertVerdict(t, got, records.IntegrityVerified, records.SeverityNone, v1)
}

// TestMirrors: the registry is asked where the node pulls from: runtrust.image.pull_ref (the registrytrust
// processor's mirror mapping) or the processor's own mirrors.
func TestMirrors(t *testing.T) {
	mirror := registrytest.Start(t)
	v1 := mirror.PushImage(t, "dockerhub/library/nginx:1.25")

	// The registrytrust processor ran before: it left the normalized ref and the pull ref.
	h := start(t, testConfig())
	got := h.one(container{image: "nginx:1.25", running: "docker.io/library/nginx@" + v1, extra: map[string]any{
		records.AttrImageRef:     "docker.io/library/nginx:1.25",
		records.AttrImagePullRef: mirror.Ref("dockerhub/library/nginx:1.25"),
	}})
	assertVerdict(t, got, records.IntegrityVerified, records.SeverityNone, v1)

	// Alone in its pipeline, with its own mirrors.
	cfg := testConfig()
	cfg.Mirrors = []registryrule.MirrorConfig{{Source: "docker.io", Mirror: mirror.Host + "/dockerhub"}}
	got = start(t, cfg).one(container{image: "nginx", tag: "1.25", running: v1})
	assertVerdict(t, got, records.IntegrityVerified, records.SeverityNone, v1)
}

// TestTLS: a registry on HTTPS with its own CA works with tls.ca_file, and says why without.
func TestTLS(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithTLS())
	v1 := reg.PushImage(t, "secure/app:1")
	pod := container{image: reg.Host + "/secure/app:1", running: v1}

	cfg := testConfig()
	cfg.Registries = []registry.HostConfig{{Host: reg.Host, TLS: registry.TLSConfig{CAFile: reg.CAFile(t)}}}
	assertVerdict(t, start(t, cfg).one(pod), records.IntegrityVerified, records.SeverityNone, v1)

	cfg = testConfig()
	cfg.Registries = []registry.HostConfig{{Host: reg.Host, TLS: registry.TLSConfig{InsecureSkipVerify: true}}}
	assertVerdict(t, start(t, cfg).one(pod), records.IntegrityVerified, records.SeverityNone, v1)

	got := start(t, testConfig()).one(pod)
	assertVerdict(t, got, records.IntegrityUnverified, records.SeverityLow, "")
}

// TestRecordsWithoutRunningDigest pass through untouched; bad references are unverified with the reason; the
// severity never falls.
func TestRecordHandling(t *testing.T) {
	reg := registrytest.Start(t)
	v1 := reg.PushImage(t, "shop/cart:1")
	h := start(t, testConfig())
	got := h.send(
		container{image: reg.Host + "/shop/cart:1"},
		container{image: "Bad Reference", running: v1},
		container{image: reg.Host + "/shop/cart:1", running: "not a digest"},
		container{image: reg.Host + "/shop/cart:1", running: v1, extra: map[string]any{
			records.AttrRiskSeverity: records.SeverityCritical,
			records.AttrRiskReasons:  []any{"untrusted_registry: x"},
		}},
	)
	assert.NotContains(t, got[0], records.AttrImageIntegrity)
	assert.NotContains(t, got[0], records.AttrRiskSeverity)
	for _, m := range got[1:3] {
		assertVerdict(t, m, records.IntegrityUnverified, records.SeverityLow, "")
		assert.Equal(t, records.IntegrityReasonBadReference, m[records.AttrImageIntegrityReason])
	}
	assert.Contains(t, reasons(got[2]), records.AttrImageRunningDigest)
	assert.Equal(t, records.IntegrityVerified, got[3][records.AttrImageIntegrity])
	assert.Equal(t, records.SeverityCritical, got[3][records.AttrRiskSeverity])
	assert.Equal(t, "untrusted_registry: x", reasons(got[3]))
}
