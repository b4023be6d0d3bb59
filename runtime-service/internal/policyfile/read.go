package policyfile

import (
	"fmt"
	"io"
	"os"
)

// Read reads a whole file of at most maxBytes: a configuration file is read into memory whole, and one a
// mistake made huge (a log pointed at by accident) must fail with its name, not take the service's memory.
func Read(name string, maxBytes int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxBytes)
	}
	return b, nil
}
