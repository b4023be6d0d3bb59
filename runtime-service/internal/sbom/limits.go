package sbom

import (
	"fmt"
	"sort"
)

// Limits bound what Generate reads and keeps, so one odd or huge image cannot exhaust the service. Reaching
// one is not an error: the SBOM lists what was found until then, with Truncated set and a Note naming the
// bound. A zero field takes its DefaultLimits value.
type Limits struct {
	MaxPackages        int   // packages in one SBOM
	MaxFilesPerPackage int   // paths read from one package's file list
	MaxFiles           int   // paths read from all packages' file lists together
	MaxDBBytes         int64 // bytes read from one package-database file (dpkg status, a .list, apk installed)
	MaxBinaryBytes     int64 // largest executable read for Go build info; larger ones are left out
	MaxSymlinks        int   // symlinks and hardlinks remembered to resolve paths
	MaxPaths           int   // paths remembered as regular file, directory or link (to keep only regular files)

	// Progress, when set, is called as the image's merged filesystem is read, with the uncompressed bytes
	// read so far (every 8 MiB and at the end). It is not a bound; it rides here so the Fetcher's Options
	// carry it to Generate.
	Progress func(bytesRead int64)
}

// DefaultLimits returns bounds that hold every image we know of (a full Debian desktop has some 3,000
// packages and 300,000 files) while keeping memory for one image in the tens of MiB.
func DefaultLimits() Limits {
	return Limits{
		MaxPackages:        20_000,
		MaxFilesPerPackage: 20_000,
		MaxFiles:           1_000_000,
		MaxDBBytes:         64 << 20,
		MaxBinaryBytes:     256 << 20,
		MaxSymlinks:        200_000,
		MaxPaths:           4_000_000,
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	orDefault(&l.MaxPackages, d.MaxPackages)
	orDefault(&l.MaxFilesPerPackage, d.MaxFilesPerPackage)
	orDefault(&l.MaxFiles, d.MaxFiles)
	orDefault(&l.MaxDBBytes, d.MaxDBBytes)
	orDefault(&l.MaxBinaryBytes, d.MaxBinaryBytes)
	orDefault(&l.MaxSymlinks, d.MaxSymlinks)
	orDefault(&l.MaxPaths, d.MaxPaths)
	return l
}

func orDefault[T int | int64](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// report gathers what Generate tells besides the packages: the bounds it reached (one Note each, however often)
// and other notes.
type report struct {
	truncated bool
	bounds    map[string]int // "MaxFiles (1000000)" → times reached
	notes     []string
}

// reached records that bound (named with its value) cut what was read.
func (r *report) reached(bound string, value int64) {
	if r.bounds == nil {
		r.bounds = map[string]int{}
	}
	r.truncated = true
	r.bounds[fmt.Sprintf("%s (%d)", bound, value)]++
}

func (r *report) notef(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// finish writes the report into sb.
func (r *report) finish(sb *SBOM) {
	keys := make([]string, 0, len(r.bounds))
	for k := range r.bounds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sb.Notes = append(sb.Notes, fmt.Sprintf("truncated: limit %s reached %d times", k, r.bounds[k]))
	}
	sb.Notes = append(sb.Notes, r.notes...)
	sb.Truncated = sb.Truncated || r.truncated
}
