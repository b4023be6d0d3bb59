package sbom

import (
	"errors"
	"hash/maphash"
	"path"
	"strings"
)

// entryKind is what a path of the merged filesystem is.
type entryKind uint8

const (
	kindNone    entryKind = iota // not in the image (never seen, or whited out)
	kindRegular                  // a regular file, or a hardlink to one
	kindDir
	kindSymlink
	kindOther // device, fifo
)

// pathIndex remembers, for each path of the merged filesystem, what it is, and every symlink's and hardlink's
// target. Package file lists name directories, symlinks and files later layers deleted; the index tells which
// listed paths are regular files in the image. Kinds are kept under a 64-bit hash of the path rather than the
// path itself: a few bytes per path instead of the path's length, with a collision chance near 1e-8 at a million
// paths (a collision could only keep a listed path that is not a regular file).
type pathIndex struct {
	seed      maphash.Seed
	kinds     map[uint64]entryKind
	symlinks  map[string]string // path → target, as written in the archive
	hardlinks map[string]string // path → the path it is a second name of
	maxPaths  int
	maxLinks  int
	rep       *report
}

func newPathIndex(lim Limits, rep *report) *pathIndex {
	return &pathIndex{
		seed:      maphash.MakeSeed(),
		kinds:     map[uint64]entryKind{},
		symlinks:  map[string]string{},
		hardlinks: map[string]string{},
		maxPaths:  lim.MaxPaths,
		maxLinks:  lim.MaxSymlinks,
		rep:       rep,
	}
}

func (x *pathIndex) hash(p string) uint64 { return maphash.String(x.seed, p) }

// add records that p (absolute, clean) is of kind k.
func (x *pathIndex) add(p string, k entryKind) {
	if len(x.kinds) >= x.maxPaths {
		x.rep.reached("MaxPaths", int64(x.maxPaths))
		return
	}
	x.kinds[x.hash(p)] = k
}

// roomForLink says whether one more link (symbolic or hard: one bound for both) fits, and reports the limit
// reached when it does not.
func (x *pathIndex) roomForLink() bool {
	if len(x.symlinks)+len(x.hardlinks) >= x.maxLinks {
		x.rep.reached("MaxSymlinks", int64(x.maxLinks))
		return false
	}
	return true
}

// addSymlink records the symlink p → target.
func (x *pathIndex) addSymlink(p, target string) {
	if !x.roomForLink() {
		return
	}
	x.symlinks[p] = target
	x.add(p, kindSymlink)
}

// addHardlink records that p is a second name of the regular file target (absolute, clean).
func (x *pathIndex) addHardlink(p, target string) {
	if !x.roomForLink() {
		return
	}
	x.hardlinks[p] = target
	x.add(p, kindRegular)
}

func (x *pathIndex) kind(p string) entryKind { return x.kinds[x.hash(p)] }

// maxLinkHops bounds the symlinks followed resolving one path, as Linux's MAXSYMLINKS (40) does.
const maxLinkHops = 40

var errSymlinkLoop = errors.New("too many levels of symbolic links")

// resolvePath returns the real path of p in a filesystem whose symlinks are links (absolute clean path →
// target as written), resolving component by component as the kernel does: a relative target against the
// link's directory, an absolute one against the image root (never the host's), ".." clamped at the root. With
// followLast false the final component is not followed (lstat rather than stat). It fails after maxLinkHops
// links (a loop). The result is always absolute and clean: it cannot leave the root.
func resolvePath(links map[string]string, p string, followLast bool) (string, error) {
	var real []string // the components resolved so far
	todo := splitPath(p)
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch {
		case c == "" || c == ".":
			continue
		case c == "..":
			if len(real) > 0 {
				real = real[:len(real)-1]
			}
			continue
		case len(todo) == 0 && !followLast:
			real = append(real, c)
			continue
		}
		target, ok := links["/"+strings.Join(append(real, c), "/")]
		if !ok {
			real = append(real, c)
			continue
		}
		if hops++; hops > maxLinkHops {
			return "", errSymlinkLoop
		}
		if strings.HasPrefix(target, "/") {
			real = real[:0]
		}
		todo = append(splitPath(target), todo...)
	}
	return "/" + strings.Join(real, "/"), nil
}

func splitPath(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// resolver resolves many paths against one filesystem, remembering each directory's real path: package files
// share few directories.
type resolver struct {
	links map[string]string
	dirs  map[string]string
	errs  map[string]error
}

func newResolver(links map[string]string) *resolver {
	return &resolver{links: links, dirs: map[string]string{}, errs: map[string]error{}}
}

// file returns the real path of the file p (absolute, clean): its directory resolved, its last component not.
func (r *resolver) file(p string) (string, error) {
	if p == "/" {
		return p, nil
	}
	dir, base := path.Split(p)
	real, err := r.dir(path.Clean(dir))
	if err != nil {
		return "", err
	}
	return path.Join(real, base), nil
}

func (r *resolver) dir(d string) (string, error) {
	if real, ok := r.dirs[d]; ok {
		return real, nil
	}
	if err, ok := r.errs[d]; ok {
		return "", err
	}
	real, err := resolvePath(r.links, d, true)
	if err != nil {
		r.errs[d] = err
		return "", err
	}
	r.dirs[d] = real
	return real, nil
}
