package vulndb

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// trivyDBFile and trivyMetadataFile are the names Trivy gives its database and the metadata beside it.
const (
	trivyDBFile       = "trivy.db"
	trivyMetadataFile = "metadata.json"
)

// validate checks a Config without loading it, and returns the file or directory to open: for trivy, the
// trivy.db file itself.
func (c Config) validate() (string, error) {
	if c.Kind != KindOSV && c.Kind != KindTrivy {
		return "", fmt.Errorf("kind %q is unknown: want %q or %q", c.Kind, KindOSV, KindTrivy)
	}
	if strings.TrimSpace(c.Path) == "" {
		return "", fmt.Errorf("%s: path is empty", c.Kind)
	}
	fi, err := os.Stat(c.Path)
	if err != nil {
		return "", fmt.Errorf("%s: path: %w", c.Kind, err)
	}
	if c.Kind == KindOSV {
		if fi.IsDir() {
			return c.Path, nil
		}
		if !isZip(c.Path) {
			return "", fmt.Errorf("osv: path %s: not a directory or a zip file", c.Path)
		}
		return c.Path, nil
	}
	p := c.Path
	if fi.IsDir() {
		p = filepath.Join(c.Path, trivyDBFile)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("trivy: path %s: a directory without %s", c.Path, trivyDBFile)
		}
	}
	if !isBolt(p) {
		return "", fmt.Errorf("trivy: path %s: not a bbolt database (trivy.db)", p)
	}
	return p, nil
}

// isZip reads the signature of a local file header, or of the end record of an empty zip.
func isZip(path string) bool {
	var b [4]byte
	if err := readAt(path, b[:], 0); err != nil {
		return false
	}
	s := string(b[:])
	return s == "PK\x03\x04" || s == "PK\x05\x06"
}

// boltMagic is bbolt's meta page magic, which follows the 16-byte page header of the file's first page.
const boltMagic = 0xED0CDAED

func isBolt(path string) bool {
	var b [4]byte
	if err := readAt(path, b[:], 16); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(b[:]) == boltMagic || binary.BigEndian.Uint32(b[:]) == boltMagic
}

func readAt(path string, b []byte, off int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.ReadAt(b, off)
	return err
}

// Fingerprint is a digest of the names, sizes and modification times of the files the databases are read
// from, without reading them: poll it, and Open again when it changes (the new DB's Version then says whether
// the content did).
func Fingerprint(cfgs ...Config) (string, error) {
	if len(cfgs) == 0 {
		return "", errors.New("vulndb: no database configured")
	}
	h := sha256.New()
	for i, c := range cfgs {
		p, err := c.validate()
		if err != nil {
			return "", fmt.Errorf("vulndb: config %d: %w", i, err)
		}
		var files []string
		if c.Kind == KindOSV {
			files, err = osvFiles(p)
		} else {
			files = []string{p, filepath.Join(filepath.Dir(p), trivyMetadataFile)}
		}
		if err != nil {
			return "", fmt.Errorf("vulndb: config %d (%s %s): %w", i, c.Kind, c.Path, err)
		}
		fmt.Fprintf(h, "%s %s\n", c.Kind, p)
		for _, f := range files {
			writeStat(h, f)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeStat(w io.Writer, path string) {
	fi, err := os.Stat(path)
	if err != nil { // a metadata.json that is not there is part of the state too
		fmt.Fprintf(w, "%s -\n", path)
		return
	}
	fmt.Fprintf(w, "%s %d %d\n", path, fi.Size(), fi.ModTime().UnixNano())
}

// osvFiles lists the files an OSV path is read from, sorted: the zip itself, or every *.json and *.zip under
// the directory. Directories whose name starts with "." (a mirror's .git) are not entered.
func osvFiles(root string) ([]string, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{root}, nil
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := strings.ToLower(filepath.Ext(p)); d.Type().IsRegular() && (ext == ".json" || ext == ".zip") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}
