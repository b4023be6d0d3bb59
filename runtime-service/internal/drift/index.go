// Package drift decides, for every program a container executed, whether it came from the container's image:
// in_image (the image's layers hold that path with that SHA-256), modified (they hold the path with another
// content), added (the image has no such path) or memory (run from a memfd). It decides from the image's own
// layers in the registry, not from how overlayfs looks on the node: a lower layer tampered with on the node or a
// binary overwritten in the writable layer both read as modified. docs/drift.md describes the verdicts, the
// index and its bounds, and the allow rules.
package drift

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Limits bound one index build so one odd or huge image cannot exhaust the service. Reaching one is not an
// error: the index keeps what it read (every entry it holds is final, as layers are read top first) and is
// Truncated, so a path it lacks is unknown rather than added. A zero field takes its DefaultLimits value.
type Limits struct {
	MaxFiles int   // regular files indexed
	MaxPaths int   // paths of any kind remembered to apply whiteouts and shadowing
	MaxBytes int64 // bytes of regular files hashed, all layers together
}

// DefaultLimits hold every image we know of (a full Debian desktop has some 300,000 files) while keeping one
// build's memory in the tens of MiB.
func DefaultLimits() Limits {
	return Limits{MaxFiles: 1_000_000, MaxPaths: 4_000_000, MaxBytes: 16 << 30}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxPaths <= 0 {
		l.MaxPaths = d.MaxPaths
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	return l
}

// Index is an image's merged filesystem as drift needs it: the SHA-256 of every regular file (hardlinks count
// as the file they name), whiteouts applied.
type Index struct {
	Files     map[string][sha256.Size]byte // absolute clean path → content SHA-256
	Truncated bool                         // a bound cut the build: a path not in Files may still be in the image
	Notes     []string                     // which bound, once each
	Bytes     int64                        // bytes of regular files hashed
}

// Build reads img's layers top first and indexes its merged filesystem. It streams: each layer is decompressed
// and each file hashed as it is read, never held whole; memory holds one entry per indexed file plus a 64-bit
// hash per other path.
func Build(ctx context.Context, img v1.Image, lim Limits) (*Index, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("drift: image layers: %w", err)
	}
	b := newBuilder(lim.withDefaults())
	for i := len(layers) - 1; i >= 0 && !b.full; i-- {
		if err := b.layer(ctx, layers[i]); err != nil {
			return nil, fmt.Errorf("drift: layer %d of %d: %w", i+1, len(layers), err)
		}
		b.endLayer()
	}
	return b.idx, nil
}

// builder applies the OCI layer rules while reading layers top first:
//   - an entry hides the same path in every lower layer (seen);
//   - a whiteout "dir/.wh.name" hides dir/name and all under it in lower layers (hidden);
//   - an opaque whiteout "dir/.wh..wh..opq" hides everything under dir in lower layers (opaque);
//   - a non-directory hides everything under its path in lower layers (a file replacing a directory);
//
// and none of these apply within the layer that holds them, so a layer's marks are merged after the layer.
type builder struct {
	lim    Limits
	idx    *Index
	seed   maphash.Seed
	seen   map[uint64]struct{} // paths upper layers decided
	hidden map[uint64]struct{} // paths upper layers hid with their whole subtree
	opaque map[uint64]struct{} // directories whose lower content upper layers hid
	// This layer's marks, merged by endLayer.
	layerSeen, layerHidden, layerOpaque map[uint64]struct{}
	layerFiles                          map[string][sha256.Size]byte // this layer's regular files: hardlink targets
	full                                bool
	notes                               map[string]bool
	buf                                 []byte
}

func newBuilder(lim Limits) *builder {
	return &builder{lim: lim, idx: &Index{Files: map[string][sha256.Size]byte{}}, seed: maphash.MakeSeed(),
		seen: map[uint64]struct{}{}, hidden: map[uint64]struct{}{}, opaque: map[uint64]struct{}{},
		layerSeen: map[uint64]struct{}{}, layerHidden: map[uint64]struct{}{}, layerOpaque: map[uint64]struct{}{},
		layerFiles: map[string][sha256.Size]byte{}, notes: map[string]bool{}, buf: make([]byte, 256<<10)}
}

func (b *builder) hash(p string) uint64 { return maphash.String(b.seed, p) }

func (b *builder) layer(ctx context.Context, l v1.Layer) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for !b.full {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := b.entry(hdr, tr); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
	return nil
}

// Entry kinds as the layer rules see them.
const (
	entryWhiteout = iota + 1
	entryOpaque
)

// classify tells what a layer entry named name is: a whiteout of the path it returns, an opaque whiteout of the
// directory it returns, or (0) an entry at the path it returns. Paths are absolute and clean; "" means the
// entry names nothing (the root itself, a whiteout without a name) and is skipped.
func classify(name string) (kind int, p string) {
	p = path.Clean("/" + name)
	dir, base := path.Split(p)
	switch {
	case p == "/":
		return 0, ""
	case base == ".wh..wh..opq":
		return entryOpaque, path.Clean(dir)
	case strings.HasPrefix(base, ".wh."):
		target := base[len(".wh."):]
		if target == "" || target == "." || target == ".." {
			return entryWhiteout, ""
		}
		return entryWhiteout, path.Join(dir, target)
	}
	return 0, p
}

// visible says whether an entry at p (absolute, clean) in the current layer shows in the merged filesystem:
// no upper layer decided p, whited it out, or hid a directory above it.
func (b *builder) visible(p string) bool {
	if _, ok := b.seen[b.hash(p)]; ok {
		return false
	}
	if _, ok := b.hidden[b.hash(p)]; ok {
		return false
	}
	for a := path.Dir(p); ; a = path.Dir(a) {
		h := b.hash(a)
		if _, ok := b.hidden[h]; ok && a != "/" {
			return false
		}
		if _, ok := b.opaque[h]; ok {
			return false
		}
		if a == "/" {
			return true
		}
	}
}

func (b *builder) entry(hdr *tar.Header, r io.Reader) error {
	kind, p := classify(hdr.Name)
	if p == "" {
		return nil
	}
	switch kind {
	case entryWhiteout:
		b.mark(b.layerHidden, p)
		return nil
	case entryOpaque:
		b.mark(b.layerOpaque, p)
		return nil
	}
	if !b.visible(p) {
		return nil
	}
	if !b.mark(b.layerSeen, p) {
		return nil
	}
	// A later entry of the same layer replaces an earlier one at the same path, as extracting the tar would.
	delete(b.idx.Files, p)
	if hdr.Typeflag != tar.TypeDir {
		b.mark(b.layerHidden, p) // a non-directory hides what lower layers have under its path
	}
	switch hdr.Typeflag {
	case tar.TypeReg: // tar.Reader reports the old TypeRegA and GNU sparse files as TypeReg
		if len(b.idx.Files) >= b.lim.MaxFiles {
			b.reached("MaxFiles", int64(b.lim.MaxFiles))
			return nil
		}
		sum, err := b.sum(r)
		if err != nil {
			return err
		}
		if b.full {
			return nil // cut short by MaxBytes: not its SHA-256
		}
		b.idx.Files[p], b.layerFiles[p] = sum, sum
	case tar.TypeLink: // a second name of a regular file earlier in the same layer
		if sum, ok := b.layerFiles[path.Clean("/"+hdr.Linkname)]; ok && len(b.idx.Files) < b.lim.MaxFiles {
			b.idx.Files[p], b.layerFiles[p] = sum, sum
		}
	}
	return nil
}

// mark adds p to set, unless MaxPaths is reached (then the build stops: without its marks, lower layers
// cannot be read right).
func (b *builder) mark(set map[uint64]struct{}, p string) bool {
	if len(b.seen)+len(b.hidden)+len(b.opaque)+len(b.layerSeen)+len(b.layerHidden)+len(b.layerOpaque) >= b.lim.MaxPaths {
		b.reached("MaxPaths", int64(b.lim.MaxPaths))
		return false
	}
	set[b.hash(p)] = struct{}{}
	return true
}

// sum hashes a file's content as it streams by, within MaxBytes.
func (b *builder) sum(r io.Reader) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	h := sha256.New()
	left := b.lim.MaxBytes - b.idx.Bytes
	n, err := io.CopyBuffer(h, io.LimitReader(r, left+1), b.buf)
	b.idx.Bytes += n
	if err != nil {
		return sum, err
	}
	if n > left {
		b.idx.Bytes = b.lim.MaxBytes
		b.reached("MaxBytes", b.lim.MaxBytes)
		return sum, nil
	}
	h.Sum(sum[:0])
	return sum, nil
}

// reached marks the index truncated by bound and stops the build.
func (b *builder) reached(bound string, value int64) {
	b.full, b.idx.Truncated = true, true
	if note := fmt.Sprintf("truncated: limit %s (%d) reached", bound, value); !b.notes[note] {
		b.notes[note] = true
		b.idx.Notes = append(b.idx.Notes, note)
	}
}

// endLayer makes the layer's marks apply to the layers below it.
func (b *builder) endLayer() {
	for _, m := range [][2]map[uint64]struct{}{{b.seen, b.layerSeen}, {b.hidden, b.layerHidden}, {b.opaque, b.layerOpaque}} {
		for h := range m[1] {
			m[0][h] = struct{}{}
		}
		clear(m[1])
	}
	clear(b.layerFiles)
}
