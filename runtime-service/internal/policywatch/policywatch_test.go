package policywatch

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/placement"
	"github.com/runtrust/runtrust/runtime-service/internal/provenance"
	"github.com/runtrust/runtrust/runtime-service/internal/provenance/provenancetest"
)

// The tests watch real placement files, loaded by placement.LoadFile, as the service does.

func rule(name string) string {
	return "rules:\n  - name: " + name + "\n    match: {repository: \"tools/*\"}\n    allow: [prod/ops]\n"
}

const broken = "rules:\n  - name: half\n    match: {repository: \"tools/*\"\n"

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log destination the watcher's goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newWatcher(t *testing.T, name string, opts Options[*placement.Policy]) (*Watcher[*placement.Policy], *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	w, err := New(name, placement.LoadFile, opts, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return w, logs
}

func ruleName(p *placement.Policy) string {
	if p == nil || len(p.Rules) != 1 {
		return "?"
	}
	return p.Rules[0].Name
}

func TestChangeApplied(t *testing.T) {
	name := filepath.Join(t.TempDir(), "placement.yaml")
	write(t, name, rule("first"))
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w, _ := newWatcher(t, name, Options[*placement.Policy]{Now: func() time.Time { return clock }})
	before := w.Status()
	if ruleName(w.Current()) != "first" || before.Path != name || before.Hash == "" || !before.LoadedAt.Equal(clock) || before.Error != "" {
		t.Fatalf("at start: %s %+v", ruleName(w.Current()), before)
	}
	clock = clock.Add(time.Minute)
	write(t, name, rule("second"))
	p, changed := w.Check()
	if !changed || ruleName(p) != "second" || ruleName(w.Current()) != "second" {
		t.Fatalf("after the edit: changed %v, %s, current %s", changed, ruleName(p), ruleName(w.Current()))
	}
	after := w.Status()
	if after.Hash == before.Hash || !after.LoadedAt.Equal(clock) || after.Error != "" {
		t.Errorf("status after the edit: %+v (before %+v)", after, before)
	}
}

func TestBadEditRefusedPreviousKeptThenRecovered(t *testing.T) {
	name := filepath.Join(t.TempDir(), "placement.yaml")
	write(t, name, rule("good"))
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w, logs := newWatcher(t, name, Options[*placement.Policy]{Now: func() time.Time { return clock }})
	inForce := w.Status()

	clock = clock.Add(time.Minute)
	write(t, name, broken)
	for range 3 {
		if p, changed := w.Check(); changed || ruleName(p) != "good" {
			t.Fatalf("a broken edit: changed %v, %s", changed, ruleName(p))
		}
	}
	st := w.Status()
	if ruleName(w.Current()) != "good" || st.Hash != inForce.Hash || !st.LoadedAt.Equal(inForce.LoadedAt) {
		t.Errorf("the policy in force moved: %s %+v", ruleName(w.Current()), st)
	}
	if !strings.Contains(st.Error, name) || !st.ErrorAt.Equal(clock) {
		t.Errorf("the refusal is not recorded with the file and time: %+v", st)
	}
	// Logged once, naming the file and the reason, however many polls see it.
	if n := strings.Count(logs.String(), "policy file refused"); n != 1 {
		t.Errorf("refusal logged %d times:\n%s", n, logs)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, name) {
		t.Errorf("the refusal log does not name the file at error level:\n%s", l)
	}

	// Another bad edit is another failure: logged again, its own time.
	clock = clock.Add(time.Minute)
	write(t, name, "rules: [{name: x, colour: red}]\n")
	w.Check()
	if n := strings.Count(logs.String(), "policy file refused"); n != 2 || !w.Status().ErrorAt.Equal(clock) {
		t.Errorf("a second, different failure: logged %d times, %+v", n, w.Status())
	}
	// A missing file is refused too; the policy stays.
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	if _, changed := w.Check(); changed || ruleName(w.Current()) != "good" || !strings.Contains(w.Status().Error, "no such file") {
		t.Errorf("the file removed: changed %v, %s, %+v", changed, ruleName(w.Current()), w.Status())
	}

	// The fix: applied, the error cleared.
	clock = clock.Add(time.Minute)
	write(t, name, rule("fixed"))
	if p, changed := w.Check(); !changed || ruleName(p) != "fixed" {
		t.Fatalf("the fix: changed %v, %s", changed, ruleName(p))
	}
	if st := w.Status(); st.Error != "" || !st.ErrorAt.IsZero() || !st.LoadedAt.Equal(clock) {
		t.Errorf("after the fix: %+v", st)
	}

	// A bad edit reverted to the content in force: nothing to apply, the error cleared.
	write(t, name, broken)
	w.Check()
	write(t, name, rule("fixed"))
	if _, changed := w.Check(); changed || w.Status().Error != "" || ruleName(w.Current()) != "fixed" {
		t.Errorf("reverted: changed %v, %+v", changed, w.Status())
	}
}

// TestKubeletSymlinkSwap updates the file as the kubelet updates a ConfigMap volume: the content is written to
// a new timestamped directory, and the ..data symlink the file's own symlink goes through is swapped to it with
// a rename. The new file is given the old one's mtime: the content decides.
func TestKubeletSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	gen := func(n, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, n, "placement.yaml"), content)
		mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := os.Chtimes(filepath.Join(dir, n, "placement.yaml"), mtime, mtime); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(n, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	gen("..2026_01_01_00_00_00.1", rule("before"))
	name := filepath.Join(dir, "placement.yaml")
	if err := os.Symlink(filepath.Join("..data", "placement.yaml"), name); err != nil {
		t.Fatal(err)
	}
	w, _ := newWatcher(t, name, Options[*placement.Policy]{})
	if ruleName(w.Current()) != "before" {
		t.Fatalf("at start: %s", ruleName(w.Current()))
	}
	gen("..2026_01_01_00_01_00.2", rule("after"))
	if err := os.RemoveAll(filepath.Join(dir, "..2026_01_01_00_00_00.1")); err != nil {
		t.Fatal(err)
	}
	if p, changed := w.Check(); !changed || ruleName(p) != "after" {
		t.Errorf("after the swap: changed %v, %s", changed, ruleName(p))
	}
	if st := w.Status(); st.Path != name || st.Error != "" {
		t.Errorf("status: %+v", st)
	}
}

// TestRunCallsOnChangeOnlyForNewContent runs the poller: a file touched or rewritten with the same content
// calls nothing; an edit calls onChange once, with the policy already in force.
func TestRunCallsOnChangeOnlyForNewContent(t *testing.T) {
	name := filepath.Join(t.TempDir(), "placement.yaml")
	write(t, name, rule("same"))
	w, _ := newWatcher(t, name, Options[*placement.Policy]{Interval: 10 * time.Millisecond})
	var calls atomic.Int32
	var inForce atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, func(_ context.Context, p *placement.Policy) {
			calls.Add(1)
			inForce.Store(ruleName(w.Current()) + "/" + ruleName(p))
		})
	}()
	defer func() { cancel(); <-done }()

	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(name, later, later); err != nil {
		t.Fatal(err)
	}
	write(t, name, rule("same"))
	time.Sleep(200 * time.Millisecond) // twenty polls
	if n := calls.Load(); n != 0 {
		t.Fatalf("onChange called %d times for unchanged content", n)
	}
	write(t, name, rule("edited"))
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // ten more polls: still one call
	if n := calls.Load(); n != 1 || inForce.Load() != "edited/edited" {
		t.Errorf("after an edit: %d calls, %v", n, inForce.Load())
	}
}

// TestRelatedFileChangeReloads: a policy that names another file (as a provenance policy names its keys) is
// loaded again when only that file changes.
func TestRelatedFileChangeReloads(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "policy.txt")
	write(t, name, "key.pem\n")
	write(t, filepath.Join(dir, "key.pem"), "one")
	type policy struct{ key, content string }
	load := func(n string) (*policy, error) {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		key := strings.TrimSpace(string(b))
		k, err := os.ReadFile(filepath.Join(filepath.Dir(n), key))
		if err != nil {
			return nil, err
		}
		if len(k) == 0 {
			return nil, errors.New("empty key " + key)
		}
		return &policy{key, string(k)}, nil
	}
	w, err := New(name, load, Options[*policy]{Related: func(p *policy) []string { return []string{p.key} }}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, changed := w.Check(); changed {
		t.Fatal("changed without an edit")
	}
	write(t, filepath.Join(dir, "key.pem"), "two")
	if p, changed := w.Check(); !changed || p.content != "two" {
		t.Fatalf("the key replaced: changed %v, %+v", changed, p)
	}
	// A key emptied: refused; refilled: loaded again though the policy file never changed.
	write(t, filepath.Join(dir, "key.pem"), "")
	if _, changed := w.Check(); changed || w.Status().Error == "" || w.Current().content != "two" {
		t.Fatalf("an empty key: changed %v, %+v", changed, w.Status())
	}
	write(t, filepath.Join(dir, "key.pem"), "three")
	if p, changed := w.Check(); !changed || p.content != "three" || w.Status().Error != "" {
		t.Fatalf("the key fixed: changed %v, %+v %+v", changed, p, w.Status())
	}
}

// TestProvenanceKeyRotation watches a real provenance policy as the service does, with the files it names: a
// key replaced in place (the policy file untouched) is a new policy with a new fingerprint; a key removed is
// refused and the policy with the old key stays.
func TestProvenanceKeyRotation(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "provenance.yaml")
	write(t, name, "rules:\n  - {name: shop, match: {repository: 'shop/*'}, keys: [release.pub]}\n")
	provenancetest.NewKey(t).WritePublic(t, dir, "release.pub")
	w, err := New(name, provenance.LoadFile, Options[*provenance.Policy]{Related: (*provenance.Policy).Files}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	before := w.Current()
	provenancetest.NewKey(t).WritePublic(t, dir, "release.pub")
	p, changed := w.Check()
	if !changed || p.Fingerprint == before.Fingerprint || p.Rules[0].Keys[0].Fingerprint == before.Rules[0].Keys[0].Fingerprint {
		t.Fatalf("the key rotated: changed %v", changed)
	}
	if err := os.Remove(filepath.Join(dir, "release.pub")); err != nil {
		t.Fatal(err)
	}
	if _, changed := w.Check(); changed || w.Current() != p || !strings.Contains(w.Status().Error, "release.pub") {
		t.Errorf("the key removed: changed %v, %+v", changed, w.Status())
	}
}

func TestNewRefusesABadFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "placement.yaml")
	write(t, name, broken)
	if _, err := New(name, placement.LoadFile, Options[*placement.Policy]{}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("New on a broken file: %v", err)
	}
	if _, err := New(filepath.Join(t.TempDir(), "missing.yaml"), placement.LoadFile, Options[*placement.Policy]{}, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("New on a missing file: no error")
	}
}
