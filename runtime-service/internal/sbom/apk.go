package sbom

import (
	"bufio"
	"fmt"
	"io"
)

// apk's installed database; /lib is /usr/lib on merged-/usr images.
var apkDBPaths = []string{"/lib/apk/db/installed", "/usr/lib/apk/db/installed"}

// maxAPKLine bounds one line of the apk database (dependency lists are the longest).
const maxAPKLine = 1 << 20

// apkRecord is an installed package from apk's database.
type apkRecord struct {
	Name, Version, Arch, Origin string
	Files                       []string // absolute paths
	FilesTruncated              bool
}

// parseAPKInstalled reads apk's installed database: one record a package, records separated by blank lines,
// each line "K:value" with a one-letter key (apk-tools' "installed database" format; no maintained small Go
// library reads it). We read P (name), V (version), A (architecture), o (origin: the source package), and the
// files: each F line names a directory (relative to /), the R lines after it the files in it. It returns at most
// maxRecords records and maxFiles files a record (truncated, FilesTruncated), and with an error the records
// read before the malformed line.
func parseAPKInstalled(r io.Reader, maxRecords, maxFiles int) (recs []apkRecord, truncated bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxAPKLine)
	var cur apkRecord
	dir := ""
	flush := func() bool {
		if cur.Name != "" {
			if len(recs) >= maxRecords {
				return false
			}
			recs = append(recs, cur)
		}
		cur, dir = apkRecord{}, ""
		return true
	}
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		if l == "" {
			if !flush() {
				return recs, true, nil
			}
			continue
		}
		if len(l) < 2 || l[1] != ':' {
			return recs, false, fmt.Errorf("line %d: %.40q is not a K:value line", line, l)
		}
		switch v := l[2:]; l[0] {
		case 'P':
			cur.Name = v
		case 'V':
			cur.Version = v
		case 'A':
			cur.Arch = v
		case 'o':
			cur.Origin = v
		case 'F':
			dir = v
		case 'R':
			if len(cur.Files) >= maxFiles {
				cur.FilesTruncated = true
				continue
			}
			cur.Files = append(cur.Files, absPath(dir+"/"+v))
		}
	}
	if err := sc.Err(); err != nil {
		return recs, false, fmt.Errorf("line %d: %w", line+1, err)
	}
	if !flush() {
		return recs, true, nil
	}
	return recs, false, nil
}

// apkPackages makes the Packages of the records read from the database at location.
func apkPackages(recs []apkRecord, location string, distro Distro, realFiles func([]string) []string) []Package {
	pkgs := make([]Package, 0, len(recs))
	for _, rec := range recs {
		pkgs = append(pkgs, Package{
			Name:       rec.Name,
			Version:    rec.Version,
			Type:       TypeAPK,
			PURL:       osPURL(TypeAPK, rec.Name, rec.Version, rec.Arch, rec.Origin, "", distro),
			SourceName: rec.Origin,
			Files:      realFiles(rec.Files),
			Locations:  []string{location},
		})
	}
	return pkgs
}
