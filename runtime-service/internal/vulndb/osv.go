package vulndb

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
)

// maxOSVDocument bounds one OSV document: entries are kilobytes, the largest (kernel CVEs listing every
// affected version) a few megabytes. It keeps a corrupt or hostile zip entry from taking the memory.
const maxOSVDocument = 32 << 20

// osvKey is what the OSV index is keyed by: the ecosystem as osvIndexEcosystem writes it, and the package name.
type osvKey struct{ eco, name string }

// osvSource is an OSV database held in memory: each affected package of each advisory, by (ecosystem, name).
type osvSource struct {
	path  string
	dig   string
	index map[osvKey][]*osvAffected
	ecos  map[string]bool // ecosystems (as indexed) at least one advisory names
	st    SourceStats
}

// osvUnit is one document to decode: a JSON file, or a JSON entry of a zip.
type osvUnit struct {
	file int       // index into the file list, whose digest a plain JSON file's content goes into
	path string    // a JSON file
	zf   *zip.File // or a zip entry
}

// osvResult is what decoding one unit gave.
type osvResult struct {
	unit     osvUnit
	affected []*osvAffected
	sum      []byte // a plain JSON file's sha256
	counts   osvCounts
	err      error
}

// openOSV reads every OSV document under path and indexes it. The documents are decoded by as many workers
// as there are CPUs: protojson decoding, not I/O, is what an Open of 100k advisories spends its time on.
func openOSV(path string) (*osvSource, error) {
	files, err := osvFiles(path)
	if err != nil {
		return nil, err
	}
	s := &osvSource{path: path, index: map[osvKey][]*osvAffected{}, ecos: map[string]bool{}}
	s.st = SourceStats{Kind: KindOSV, Path: path, Files: len(files)}
	sums := make([][]byte, len(files))
	units := make(chan osvUnit, 256)
	results := make(chan osvResult, 256)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for u := range units {
				results <- decodeUnit(u)
			}
		})
	}
	var produceErr error
	go func() {
		produceErr = produceUnits(files, sums, units)
		close(units)
		wg.Wait()
		close(results)
	}()
	for r := range results {
		s.add(r)
		if r.sum != nil {
			sums[r.unit.file] = r.sum
		}
	}
	if produceErr != nil {
		return nil, produceErr
	}
	if s.st.Advisories == 0 && s.st.Withdrawn == 0 && s.st.Unsupported == 0 {
		return nil, fmt.Errorf("no OSV entries found under %s (%d files, %d invalid%s)", path, len(files),
			s.st.Invalid, firstErr(s.st.FirstInvalid))
	}
	s.finish()
	s.dig = osvDigest(path, files, sums)
	return s, nil
}

func firstErr(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}

// produceUnits sends a unit per JSON file and per JSON entry of each zip. A zip is read whole (osv.dev's
// largest, Debian's, is some hundred megabytes) so that its digest and its entries come from one read.
func produceUnits(files []string, sums [][]byte, units chan<- osvUnit) error {
	for i, f := range files {
		if !strings.EqualFold(filepath.Ext(f), ".zip") {
			units <- osvUnit{file: i, path: f}
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		sums[i] = sum[:]
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, zf := range zr.File {
			if !zf.FileInfo().IsDir() && strings.EqualFold(filepath.Ext(zf.Name), ".json") {
				units <- osvUnit{file: i, zf: zf}
			}
		}
	}
	return nil
}

// decodeUnit reads and decodes one document. Errors are the document's own: they are counted, not fatal.
func decodeUnit(u osvUnit) osvResult {
	r := osvResult{unit: u}
	var data []byte
	if u.zf != nil {
		data, r.err = readZipEntry(u.zf)
	} else {
		data, r.err = readLimited(u.path)
		if r.err == nil {
			sum := sha256.Sum256(data)
			r.sum = sum[:]
		}
	}
	if r.err != nil {
		return r
	}
	vulns, err := decodeOSV(data)
	if err != nil {
		r.err = err
		return r
	}
	for _, v := range vulns {
		r.affected = append(r.affected, indexEntry(v, &r.counts)...)
	}
	return r
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllLimited(f)
}

func readZipEntry(zf *zip.File) ([]byte, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readAllLimited(rc)
}

func readAllLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxOSVDocument+1))
	if err == nil && len(data) > maxOSVDocument {
		err = fmt.Errorf("document larger than %d bytes", maxOSVDocument)
	}
	return data, err
}

var osvJSON = protojson.UnmarshalOptions{DiscardUnknown: true} // OSV adds fields; older data drops some

// decodeOSV decodes one OSV document: an entry, or an array of entries (some exports bundle them).
func decodeOSV(data []byte) ([]*osvschema.Vulnerability, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, err
		}
		out := make([]*osvschema.Vulnerability, 0, len(raws))
		for _, raw := range raws {
			v := &osvschema.Vulnerability{}
			if err := osvJSON.Unmarshal(raw, v); err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	v := &osvschema.Vulnerability{}
	if err := osvJSON.Unmarshal(data, v); err != nil {
		return nil, err
	}
	return []*osvschema.Vulnerability{v}, nil
}

// add indexes one decoded unit and counts what it held.
func (s *osvSource) add(r osvResult) {
	if r.err != nil {
		s.st.Invalid++
		if s.st.FirstInvalid == "" {
			s.st.FirstInvalid = fmt.Sprintf("%s: %v", unitName(r.unit), r.err)
		}
		return
	}
	s.st.Advisories += r.counts.indexed
	s.st.Withdrawn += r.counts.withdrawn
	s.st.Unsupported += r.counts.unsupported
	s.st.Invalid += r.counts.invalid
	if s.st.FirstInvalid == "" && r.counts.firstInvalid != "" {
		s.st.FirstInvalid = unitName(r.unit) + ": " + r.counts.firstInvalid
	}
	for _, a := range r.affected {
		k := osvKey{osvIndexEcosystem(a.ecosystem), a.name}
		s.index[k] = append(s.index[k], a)
		s.ecos[k.eco] = true
	}
}

func unitName(u osvUnit) string {
	if u.zf != nil {
		return u.zf.Name
	}
	return u.path
}

// finish orders each index entry by advisory id: the workers deliver in no fixed order, and Match's choices
// (which data source a finding names, the order of problems) must not depend on it.
func (s *osvSource) finish() {
	for _, as := range s.index {
		sort.SliceStable(as, func(i, j int) bool {
			if as[i].adv.id != as[j].adv.id {
				return as[i].adv.id < as[j].adv.id
			}
			return as[i].ecosystem < as[j].ecosystem
		})
	}
}

// osvDigest is the sha256 of each file's content, with its path below root, in path order.
func osvDigest(root string, files []string, sums [][]byte) string {
	h := sha256.New()
	for i, f := range files {
		rel, err := filepath.Rel(root, f)
		if err != nil || rel == "." {
			rel = filepath.Base(f)
		}
		fmt.Fprintf(h, "%s %x\n", filepath.ToSlash(rel), sums[i])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *osvSource) kind() string       { return KindOSV }
func (s *osvSource) digest() string     { return s.dig }
func (s *osvSource) stats() SourceStats { return s.st }
func (s *osvSource) close() error       { return nil }

func (s *osvSource) covers(d sbom.Distro, pkgType string) bool {
	for _, e := range osvEcosystems(d, pkgType) {
		if s.ecos[e] {
			return true
		}
	}
	return false
}

// errNoID is an OSV entry without an id: nothing to report it under.
var errNoID = errors.New("entry has no id")
