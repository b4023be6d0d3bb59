package drift

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// The stored form of an Index (the store keeps it per digest, so an image's layers are read once): gzip of a
// magic line, then per file, in path order, the path's length (uvarint), the path, and its 32-byte SHA-256.
// Truncated and Notes are kept by the store in columns of their own.
const magic = "runtrust drift index 1\n"

// maxStoredPath bounds one path read back: Linux's PATH_MAX.
const maxStoredPath = 4096

// Encode returns the stored form of idx's files.
func Encode(idx *Index) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	w := bufio.NewWriter(zw)
	w.WriteString(magic)
	paths := make([]string, 0, len(idx.Files))
	for p := range idx.Files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var n [binary.MaxVarintLen64]byte
	for _, p := range paths {
		sum := idx.Files[p]
		w.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		w.WriteString(p)
		w.Write(sum[:])
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decode reads the stored form back into the files of an Index.
func Decode(b []byte) (map[string][sha256.Size]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("drift: stored index: %w", err)
	}
	r := bufio.NewReader(zr)
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(r, head); err != nil || string(head) != magic {
		return nil, errors.New("drift: stored index: not a drift index")
	}
	files := map[string][sha256.Size]byte{}
	for {
		n, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil || n == 0 || n > maxStoredPath {
			return nil, fmt.Errorf("drift: stored index: bad path length after %d files", len(files))
		}
		rec := make([]byte, int(n)+sha256.Size)
		if _, err := io.ReadFull(r, rec); err != nil {
			return nil, fmt.Errorf("drift: stored index: cut short after %d files", len(files))
		}
		files[string(rec[:n])] = [sha256.Size]byte(rec[n:])
	}
}
