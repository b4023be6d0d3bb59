// Package policyfile reads the service's rule files (placement, signatures and provenance) the same way: YAML
// or JSON, bounded in size, unknown keys refused, a "rules" list required and bounded. Read is the bounded read
// of a configuration file, for these and the service's other files (OIDC, drift rules).
package policyfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// Decode reads data, at most maxBytes of it, into into, a struct with a "rules" field; kind names the file in
// the error when it is not one ("placement policy"). Unknown keys are errors.
func Decode(data []byte, maxBytes int, kind string, into any) error {
	if len(data) > maxBytes {
		return fmt.Errorf("larger than %d bytes", maxBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty: want a \"rules\" list")
		}
		return fmt.Errorf("not a %s: %w", kind, err)
	}
	return nil
}

// Rules checks a decoded "rules" list: present (an empty list is no rules) and at most maxRules long.
func Rules[T any](rules *[]T, maxRules int) error {
	if rules == nil {
		return errors.New("rules: missing; want a list of rules (an empty list is no rules)")
	}
	if len(*rules) > maxRules {
		return fmt.Errorf("rules: %d rules, at most %d", len(*rules), maxRules)
	}
	return nil
}
