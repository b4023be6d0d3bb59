package vulnscan

import (
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// FileIndex maps each file an SBOM's packages installed (real paths, as the sensor reports them) to the keys
// of the packages that own it. A path two packages claim (a diverted file, a Go binary that is also a dpkg
// file) loads both.
type FileIndex map[string][]string

// IndexFiles builds the file index of an SBOM.
func IndexFiles(s *sbom.SBOM) FileIndex {
	n := 0
	for i := range s.Packages {
		n += len(s.Packages[i].Files)
	}
	idx := make(FileIndex, n)
	for i := range s.Packages {
		p := &s.Packages[i]
		key := p.Key()
		for _, f := range p.Files {
			if owners := idx[f]; len(owners) == 0 || owners[len(owners)-1] != key {
				idx[f] = append(owners, key)
			}
		}
	}
	return idx
}

// Loaded joins what the sensors saw an image's containers execute and open with the file index: for each
// package key with a file among them, the earliest such event (an exec before an open at the same instant).
func Loaded(idx FileIndex, observed []store.ObservedPath) map[string]store.Evidence {
	out := map[string]store.Evidence{}
	for i := range observed {
		o := &observed[i]
		for _, key := range idx[o.Path] {
			if cur, ok := out[key]; ok && !earlier(o, cur) {
				continue
			}
			out[key] = store.Evidence{Kind: o.Kind, Path: o.Path, Process: o.Process, ContainerID: o.ContainerID, At: o.First, Count: o.Count}
		}
	}
	return out
}

func earlier(o *store.ObservedPath, e store.Evidence) bool {
	if !o.First.Equal(e.At) {
		return o.First.Before(e.At)
	}
	return o.Kind == "exec" && e.Kind != "exec"
}

// Decide gives each finding not yet loaded its reachability: loaded with the evidence when its package has a
// loaded file; not_loaded when sensors watched a container of the image for at least window and saw none;
// unknown otherwise (no sensor on the image's nodes, as in Integrity mode, or not watched long enough).
func Decide(findings []store.Reach, loaded map[string]store.Evidence, w store.Watch, window time.Duration) []store.Reach {
	out := make([]store.Reach, 0, len(findings))
	for _, f := range findings {
		r := store.Reach{ID: f.ID, PackageKey: f.PackageKey}
		switch ev, ok := loaded[f.PackageKey]; {
		case ok:
			r.Reachability, r.Evidence = store.ReachLoaded, &ev
		case w.Sensed && w.Longest >= window:
			r.Reachability = store.ReachNotLoaded
		default:
			r.Reachability = store.ReachUnknown
		}
		out = append(out, r)
	}
	return out
}
