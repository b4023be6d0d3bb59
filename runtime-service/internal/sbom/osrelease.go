package sbom

import (
	"bufio"
	"io"
	"strings"
)

// The os-release files, in the order os-release(5) tells programs to read them. On most images /etc/os-release
// is a symlink to ../usr/lib/os-release.
var osReleasePaths = []string{"/etc/os-release", "/usr/lib/os-release"}

// maxOSReleaseBytes bounds the os-release file read: it holds a dozen short lines.
const maxOSReleaseBytes = 64 << 10

// parseOSRelease reads ID and VERSION_ID from an os-release file: KEY=value lines, values optionally in single or
// double quotes with backslash escapes, "#" comments.
func parseOSRelease(r io.Reader) Distro {
	var d Distro
	sc := bufio.NewScanner(io.LimitReader(r, maxOSReleaseBytes))
	for sc.Scan() {
		key, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(key, "#") {
			continue
		}
		switch key {
		case "ID":
			d.ID = unquoteShell(val)
		case "VERSION_ID":
			d.VersionID = unquoteShell(val)
		}
	}
	return d
}

// unquoteShell undoes the shell quoting os-release allows.
func unquoteShell(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
