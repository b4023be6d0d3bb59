package provenance

import (
	"encoding/base64"
	"strings"
	"testing"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseSimpleSigning(t *testing.T) {
	ok := `{"critical":{"identity":{"docker-reference":"r.example/app"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"cosign container image signature"},"optional":null}`
	s, err := ParseSimpleSigning([]byte(ok))
	if err != nil || s.ManifestDigest != testDigest || s.DockerReference != "r.example/app" {
		t.Fatalf("%+v, %v", s, err)
	}
	for _, tc := range []struct{ in, want string }{
		{`{}`, `no "critical" section`},
		{`{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"` + testDigest + `"}}}`, "is not \"cosign container image signature\""},
		{`{"critical":{"type":"cosign container image signature","image":{"docker-manifest-digest":"sha256:xyz"}}}`, "is not a sha256 digest"},
		{`[1]`, "not JSON of that shape"},
	} {
		if _, err := ParseSimpleSigning([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestParseEnvelope(t *testing.T) {
	p := base64.StdEncoding.EncodeToString([]byte(`{"x":1}`))
	e, err := ParseEnvelope([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"` + p + `","signatures":[{"keyid":"","sig":"AAAA"}]}`))
	if err != nil || string(e.Payload) != `{"x":1}` || e.Signatures != 1 {
		t.Fatalf("%+v, %v", e, err)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"payloadType":"t","payload":"!!","signatures":[{"sig":"AAAA"}]}`, "payload is not base64"},
		{`{"payload":"","signatures":[{"sig":"AAAA"}]}`, "no payloadType"},
		{`{"payloadType":"t","payload":""}`, "no signatures"},
		{`{"payloadType":"t","payload":"","signatures":[{"sig":""}]}`, "signatures[0].sig is not base64"},
	} {
		if _, err := ParseEnvelope([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestParseStatement(t *testing.T) {
	hex := strings.TrimPrefix(testDigest, "sha256:")
	s, err := ParseStatement([]byte(`{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"a","digest":{"sha256":"` + strings.ToUpper(hex) + `"}}],"predicateType":"p","predicate":{}}`))
	if err != nil || !s.Names(testDigest) || s.Names("sha256:"+strings.Repeat("0", 64)) || s.PredicateType != "p" {
		t.Fatalf("%+v, %v", s, err)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"_type":"x","predicateType":"p"}`, "is not an in-toto statement"},
		{`{"_type":"https://in-toto.io/Statement/v1"}`, "no predicateType"},
	} {
		if _, err := ParseStatement([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestParseProvenance(t *testing.T) {
	for _, tc := range []struct {
		name, typ, in string
		want          BuildInfo
	}{
		{"v1 GitLab style: source in externalParameters, commit in dependencies", PredicateSLSA1,
			`{"buildDefinition":{"buildType":"https://gitlab.com/bt","externalParameters":{"source":"https://gitlab.com/g/p"},
			"resolvedDependencies":[{"uri":"git+https://other.example/x@main","digest":{"sha1":"111"}},{"uri":"git+https://gitlab.com/g/p.git@refs/tags/v1","digest":{"sha1":"abc"}}]},
			"runDetails":{"builder":{"id":"https://gitlab.com/runner"},"metadata":{"invocationId":"https://gitlab.com/g/p/-/jobs/9"}}}`,
			BuildInfo{BuilderID: "https://gitlab.com/runner", BuildType: "https://gitlab.com/bt", SourceRepo: "https://gitlab.com/g/p", Commit: "abc",
				Ref: "refs/tags/v1", BuildID: "https://gitlab.com/g/p/-/jobs/9", CIURL: "https://gitlab.com/g/p/-/jobs/9"}},
		{"v1 minimal: source from the first dependency, an id that is not a URL", PredicateSLSA1,
			`{"buildDefinition":{"resolvedDependencies":[{"uri":"git+ssh://git@host.example/r@main","digest":{"gitCommit":"c0ffee"}}]},
			"runDetails":{"builder":{"id":"b"},"metadata":{"invocationId":"build-77"}}}`,
			BuildInfo{BuilderID: "b", SourceRepo: "ssh://git@host.example/r", Ref: "main", Commit: "c0ffee", BuildID: "build-77"}},
		{"v0.2", PredicateSLSA02,
			`{"builder":{"id":"https://tekton.example"},"buildType":"bt","invocation":{"configSource":{"uri":"git+https://github.com/o/r@refs/heads/main","digest":{"sha1":"deadbeef"}}},
			"metadata":{"buildInvocationId":"https://ci.example/run/5","buildStartedOn":"2026-01-02T03:04:05Z"}}`,
			BuildInfo{BuilderID: "https://tekton.example", BuildType: "bt", SourceRepo: "https://github.com/o/r", Ref: "refs/heads/main", Commit: "deadbeef",
				BuildID: "https://ci.example/run/5", CIURL: "https://ci.example/run/5", StartedOn: "2026-01-02T03:04:05Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProvenance(tc.typ, []byte(tc.in))
			if err != nil || got != tc.want {
				t.Errorf("got  %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ typ, in, want string }{
		{PredicateSLSA1, `{"runDetails":{}}`, "no runDetails.builder.id"},
		{PredicateSLSA02, `{}`, "no builder.id"},
		{"https://spdx.dev/Document", `{}`, "is not SLSA provenance"},
		{PredicateSLSA1, `"x"`, "not JSON of that shape"},
	} {
		if _, err := ParseProvenance(tc.typ, []byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: err = %v, want %q", tc.typ, tc.in, err, tc.want)
		}
	}
}

func TestParseBundle(t *testing.T) {
	dg := base64.StdEncoding.EncodeToString(make([]byte, 32))
	b, err := ParseBundle([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"k"},"tlogEntries":[{},{}]},
		"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"` + dg + `"},"signature":"AAAA"}}`))
	if err != nil || b.KeyHint != "k" || b.TlogEntries != 2 || len(b.MessageDigest) != 32 || b.Envelope != nil {
		t.Fatalf("%+v, %v", b, err)
	}
	vm := `"verificationMaterial":{"publicKey":{"hint":"k"}}`
	for _, tc := range []struct{ in, want string }{
		{`{"mediaType":"application/json"}`, "is not a sigstore bundle's"},
		{`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{}}`, "no certificate, chain or public key"},
		{`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"certificate":{"rawBytes":"AAAA"}}}`, "certificate 0:"},
		{`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",` + vm + `}`, "neither messageSignature nor dsseEnvelope"},
		{`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",` + vm + `,"messageSignature":{"messageDigest":{"algorithm":"SHA2_512"}}}`, "is not SHA2_256"},
		{`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",` + vm + `,"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAA"}}}`, "not a base64 SHA-256"},
		{`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",` + vm + `,"dsseEnvelope":{"payloadType":"t","payload":""}}`, "DSSE envelope: no signatures"},
	} {
		if _, err := ParseBundle([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestSplitSourceURI(t *testing.T) {
	for in, want := range map[string][2]string{
		"git+https://github.com/o/r@refs/heads/main": {"https://github.com/o/r", "refs/heads/main"},
		"https://github.com/o/r":                     {"https://github.com/o/r", ""},
		"git+ssh://git@host/r":                       {"ssh://git@host/r", ""},
		"git+ssh://git@host/r@v1":                    {"ssh://git@host/r", "v1"},
		"":                                           {"", ""},
	} {
		if r, ref := splitSourceURI(in); r != want[0] || ref != want[1] {
			t.Errorf("splitSourceURI(%q) = %q, %q; want %q", in, r, ref, want)
		}
	}
}

func FuzzParseSimpleSigning(f *testing.F) {
	f.Add([]byte(`{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"cosign container image signature"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseSimpleSigning(b); err == nil && !isDigest(s.ManifestDigest) {
			t.Fatalf("accepted digest %q", s.ManifestDigest)
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AAAA"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := ParseEnvelope(b); err == nil && (e.PayloadType == "" || e.Signatures == 0) {
			t.Fatalf("accepted %+v", e)
		}
	})
}

func FuzzParseStatement(f *testing.F) {
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"00"}}],"predicateType":"p","predicate":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseStatement(b); err == nil {
			s.Names(testDigest)
		}
	})
}

func FuzzParseProvenance(f *testing.F) {
	f.Add(PredicateSLSA1, []byte(`{"buildDefinition":{"externalParameters":{"workflow":{"repository":"https://g/o/r"}},"resolvedDependencies":[{"uri":"git+https://g/o/r@main","digest":{"gitCommit":"1"}}]},"runDetails":{"builder":{"id":"b"},"metadata":{"invocationId":"https://ci/1"}}}`))
	f.Add(PredicateSLSA02, []byte(`{"builder":{"id":"b"},"invocation":{"configSource":{"uri":"git+https://g/o/r@refs/x"}}}`))
	f.Fuzz(func(t *testing.T, typ string, b []byte) {
		if bi, err := ParseProvenance(typ, b); err == nil && bi.BuilderID == "" {
			t.Fatal("provenance without a builder accepted")
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"k"}},"dsseEnvelope":{"payloadType":"t","payload":"e30=","signatures":[{"sig":"AAAA"}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if bn, err := ParseBundle(b); err == nil && bn.Envelope == nil && len(bn.MessageDigest) != 32 {
			t.Fatalf("accepted %+v", bn)
		}
	})
}

func TestKindOf(t *testing.T) {
	for mt, want := range map[string]string{
		MediaSimpleSigning: MediaSimpleSigning,
		MediaDSSE:          MediaDSSE,
		MediaBundle:        MediaBundle,
		"application/vnd.dev.sigstore.bundle+json;version=0.3": MediaBundle,
		"application/vnd.dev.sigstore.bundle+json;version=1":   "",
		"application/spdx+json":                                "",
		"not a media type;;":                                   "",
	} {
		if got := kindOf(mt); got != want {
			t.Errorf("kindOf(%q) = %q, want %q", mt, got, want)
		}
	}
	if !attachedType(MediaCosignSigArtifact) || attachedType("application/vnd.oci.empty.v1+json") || !knownOther("application/vnd.cyclonedx+json") {
		t.Error("attachedType/knownOther")
	}
}
