package drift

import (
	"fmt"

	"github.com/runtrust/runtrust/runtime-service/internal/policyfile"
)

// Bounds of a rules file: a list of globs meant to be read by people, not generated.
const (
	MaxFileBytes = 1 << 20
	MaxRules     = 1000
)

// file is the rules file (docs/drift.md):
//
//	rules:
//	  - {image: "registry.example.com/ci/*"}   # drift in these images is expected
//	  - {path: "/tmp/go-build**"}              # programs run from here are expected
//	severity: {added: medium}                  # optional, per modified, added, memory
type file struct {
	Rules    *[]fileRule       `yaml:"rules"`
	Severity map[string]string `yaml:"severity"`
}

type fileRule struct {
	Image string `yaml:"image"`
	Path  string `yaml:"path"`
}

// ParseFile reads a rules file: YAML (or JSON), unknown keys refused, each rule an image glob or a path glob.
// The error names the rule at fault.
func ParseFile(data []byte) (Rules, error) {
	var f file
	if err := policyfile.Decode(data, MaxFileBytes, "drift rules file", &f); err != nil {
		return Rules{}, err
	}
	if err := policyfile.Rules(f.Rules, MaxRules); err != nil {
		return Rules{}, err
	}
	var r Rules
	for i, fr := range *f.Rules {
		switch {
		case (fr.Image == "") == (fr.Path == ""):
			return Rules{}, fmt.Errorf("rules[%d]: want exactly one of image (a repository glob) or path (an executable path glob)", i)
		case fr.Image != "":
			if _, err := CompileGlob(fr.Image); err != nil {
				return Rules{}, fmt.Errorf("rules[%d].image %q: %w", i, fr.Image, err)
			}
			r.AllowImages = append(r.AllowImages, fr.Image)
		default:
			if _, err := CompileGlob(fr.Path); err != nil {
				return Rules{}, fmt.Errorf("rules[%d].path %q: %w", i, fr.Path, err)
			}
			r.AllowPaths = append(r.AllowPaths, fr.Path)
		}
	}
	if len(f.Severity) > 0 {
		r.Severity = map[Verdict]string{}
		for v, s := range f.Severity {
			r.Severity[Verdict(v)] = s
		}
	}
	if _, err := Compile(r); err != nil { // the severities
		return Rules{}, err
	}
	return r, nil
}

// LoadFile reads and compiles a rules file.
func LoadFile(name string) (*Policy, error) {
	data, err := policyfile.Read(name, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("drift file: %w", err)
	}
	r, err := ParseFile(data)
	if err == nil {
		var p *Policy
		if p, err = Compile(r); err == nil {
			return p, nil
		}
	}
	return nil, fmt.Errorf("drift file %s: %w", name, err)
}
