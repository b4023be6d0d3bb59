package hostcontainers

import (
	"errors"
	"fmt"
	"regexp"

	"google.golang.org/protobuf/encoding/protowire"
)

func encodeString(field protowire.Number, s string) []byte {
	b := protowire.AppendTag(nil, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// maxNamespaces bounds a namespace list: a host has a handful (default, k8s.io, moby, buildkit).
const maxNamespaces = 1024

// DecodeNamespaces reads a containerd ListNamespacesResponse: the names of its namespaces (field 1, Namespace,
// whose field 1 is the name).
func DecodeNamespaces(b []byte) ([]string, error) {
	names := []string{}
	err := eachField(b, "ListNamespacesResponse", func(num protowire.Number, v []byte) error {
		if num != 1 {
			return nil
		}
		name, err := stringField(v, 1, "Namespace")
		if err != nil {
			return err
		}
		if name == "" {
			return errors.New("ListNamespacesResponse: a namespace without a name")
		}
		if len(names) == maxNamespaces {
			return fmt.Errorf("ListNamespacesResponse: more than %d namespaces", maxNamespaces)
		}
		names = append(names, name)
		return nil
	})
	return names, err
}

// DecodeContainerImage reads a containerd GetContainerResponse (field 1, Container) and returns the container's
// image name (Container field 3); "" when it was created from none.
func DecodeContainerImage(b []byte) (string, error) {
	c, err := messageField(b, 1, "GetContainerResponse")
	if err != nil {
		return "", err
	}
	if c == nil {
		return "", errors.New("GetContainerResponse: no container")
	}
	return stringField(c, 3, "Container")
}

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// DecodeImageDigest reads a containerd GetImageResponse (field 1, Image) and returns the digest of the image's
// target descriptor (Image field 3, Descriptor field 2): the manifest or index the name resolved to.
func DecodeImageDigest(b []byte) (string, error) {
	img, err := messageField(b, 1, "GetImageResponse")
	if err != nil {
		return "", err
	}
	if img == nil {
		return "", errors.New("GetImageResponse: no image")
	}
	target, err := messageField(img, 3, "Image")
	if err != nil {
		return "", err
	}
	if target == nil {
		return "", errors.New("Image: no target descriptor")
	}
	d, err := stringField(target, 2, "Descriptor")
	if err != nil {
		return "", err
	}
	if !digestPattern.MatchString(d) {
		return "", fmt.Errorf("the image's descriptor: digest %q is not sha256:<64 hex>", truncate(d))
	}
	return d, nil
}

// eachField calls f with every length-delimited field of the message b (other wire types are skipped, as
// protobuf readers skip what they do not know).
func eachField(b []byte, msg string, f func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%s: bad field tag: %w", msg, protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%s: field %d: %w", msg, num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("%s: field %d: %w", msg, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, v); err != nil {
			return err
		}
	}
	return nil
}

// messageField is the last occurrence of the length-delimited field want in b (protobuf's rule for a
// non-repeated field), or nil.
func messageField(b []byte, want protowire.Number, msg string) ([]byte, error) {
	var out []byte
	err := eachField(b, msg, func(num protowire.Number, v []byte) error {
		if num == want {
			out = v
			if out == nil {
				out = []byte{}
			}
		}
		return nil
	})
	return out, err
}

// maxString bounds a name or digest read from the runtime.
const maxString = 4096

func stringField(b []byte, want protowire.Number, msg string) (string, error) {
	v, err := messageField(b, want, msg)
	if err != nil {
		return "", err
	}
	if len(v) > maxString {
		return "", fmt.Errorf("%s: field %d is %d bytes, over %d", msg, want, len(v), maxString)
	}
	return string(v), nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
