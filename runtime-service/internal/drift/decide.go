package drift

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Verdict says where an executed program came from.
type Verdict string

// The verdicts (docs/drift.md).
const (
	InImage  Verdict = "in_image" // the image holds the path with this SHA-256
	Modified Verdict = "modified" // the image holds the path with another SHA-256
	Added    Verdict = "added"    // the image has no such path
	Memory   Verdict = "memory"   // run from memory (a memfd), a file no directory holds
	// Unknown: no decision can be made — the sensor could not hash the program, or the index was truncated and
	// lacks the path. Never reported as drift.
	Unknown Verdict = "unknown"
)

// Decide gives the verdict on a program the image's container executed at path (as the sensor reports it: the
// kernel's real path, or "/memfd:<name>" for a detached file) with content SHA-256 sha (hex; "" when the sensor
// could not hash it). files is the image's index.
func Decide(files map[string][sha256.Size]byte, truncated bool, path, sha string) Verdict {
	want, inImage := files[path]
	if memoryPath(path) && !inImage {
		return Memory
	}
	var got [sha256.Size]byte
	if len(sha) != 2*sha256.Size {
		return Unknown
	}
	if _, err := hex.Decode(got[:], []byte(sha)); err != nil {
		return Unknown
	}
	switch {
	case inImage && got == want:
		return InImage
	case inImage:
		return Modified
	case truncated:
		return Unknown
	}
	return Added
}

// memoryPath says whether path is how the sensor names a file no directory holds: a memfd ("/memfd:<name>",
// runtrust.file.path_detached in the record) or a file deleted after it was started ("… (deleted)", as
// /proc/<pid>/exe shows one).
func memoryPath(path string) bool {
	return strings.HasPrefix(path, "/memfd:") || strings.HasSuffix(path, " (deleted)")
}
