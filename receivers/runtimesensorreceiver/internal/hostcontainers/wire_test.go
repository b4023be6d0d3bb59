package hostcontainers

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func msg(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

func bytesField(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
}

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestDecodeNamespaces(t *testing.T) {
	ns := func(name string) []byte {
		return bytesField(1, msg(encodeString(1, name), bytesField(2, []byte("labels"))))
	}
	for _, tt := range []struct {
		name string
		in   []byte
		want []string
		err  string
	}{
		{"none", nil, []string{}, ""},
		{"three", msg(ns("default"), ns("k8s.io"), ns("moby")), []string{"default", "k8s.io", "moby"}, ""},
		{"unknown fields skipped", msg(varintField(7, 3), ns("default"), bytesField(9, []byte("x"))), []string{"default"}, ""},
		{"nameless namespace", bytesField(1, nil), nil, "a namespace without a name"},
		{"truncated", ns("default")[:5], nil, "ListNamespacesResponse: field 1"},
		{"bad tag", []byte{0xff}, nil, "bad field tag"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeNamespaces(tt.in)
			checkDecoded(t, strings.Join(got, ","), err, strings.Join(tt.want, ","), tt.err)
		})
	}
}

func TestDecodeContainerImage(t *testing.T) {
	container := func(fields ...[]byte) []byte { return bytesField(1, msg(fields...)) }
	for _, tt := range []struct {
		name, want, err string
		in              []byte
	}{
		{name: "image", in: container(encodeString(1, "abc"), encodeString(3, "registry.example/app:1"), encodeString(4, "runc")), want: "registry.example/app:1"},
		{name: "no image", in: container(encodeString(1, "abc")), want: ""},
		{name: "no container", in: nil, err: "no container"},
		{name: "too long", in: container(encodeString(3, strings.Repeat("a", maxString+1))), err: "over 4096"},
		{name: "truncated", in: container(encodeString(3, "registry.example/app:1"))[:9], err: "GetContainerResponse: field 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeContainerImage(tt.in)
			checkDecoded(t, got, err, tt.want, tt.err)
		})
	}
}

func TestDecodeImageDigest(t *testing.T) {
	image := func(target []byte) []byte {
		return bytesField(1, msg(encodeString(1, "registry.example/app:1"), bytesField(3, target)))
	}
	desc := func(d string) []byte {
		return msg(encodeString(1, "application/vnd.oci.image.index.v1+json"), encodeString(2, d), varintField(3, 1234))
	}
	for _, tt := range []struct {
		name, want, err string
		in              []byte
	}{
		{name: "digest", in: image(desc(digest)), want: digest},
		{name: "not sha256", in: image(desc("md5:abc")), err: `digest "md5:abc" is not sha256`},
		{name: "upper-case hex", in: image(desc(strings.ToUpper(digest))), err: "is not sha256"},
		{name: "no target", in: bytesField(1, encodeString(1, "x")), err: "no target descriptor"},
		{name: "no image", in: nil, err: "no image"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeImageDigest(tt.in)
			checkDecoded(t, got, err, tt.want, tt.err)
		})
	}
}

// checkDecoded fails unless err holds wantErr (when set) or got is want.
func checkDecoded(t *testing.T, got string, err error, want, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error %v, want one with %q", err, wantErr)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

// FuzzDecode: whatever a socket answers, the decoders return an error or a bounded result, never panic.
func FuzzDecode(f *testing.F) {
	f.Add(bytesField(1, encodeString(1, "default")))
	f.Add(bytesField(1, msg(encodeString(3, "registry.example/app:1"))))
	f.Add(bytesField(1, bytesField(3, encodeString(2, digest))))
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		if ns, err := DecodeNamespaces(b); err == nil && len(ns) > maxNamespaces {
			t.Fatalf("%d namespaces", len(ns))
		}
		if name, err := DecodeContainerImage(b); err == nil && len(name) > maxString {
			t.Fatalf("image name of %d bytes", len(name))
		}
		if d, err := DecodeImageDigest(b); err == nil && !digestPattern.MatchString(d) {
			t.Fatalf("digest %q", d)
		}
	})
}
