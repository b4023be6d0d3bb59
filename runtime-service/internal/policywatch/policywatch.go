// Package policywatch keeps a policy file's loaded content current while the service runs. The service's
// policy files (placement, signatures and provenance, drift) are mounted from Kubernetes ConfigMaps, which the
// kubelet updates in place: an edit is to take effect within seconds, and a bad edit is to be refused loudly
// while the policy in force stays. A Watcher polls its file, loads it again when its content changed, and swaps
// the policy its users read only when the load succeeds.
//
// Content is compared by hash, not by modification time: the kubelet updates a ConfigMap volume by writing a
// new directory and swapping the "..data" symlink to it, so the file a path resolves to is a different file
// whose mtime says little, and an editor may keep the mtime while changing the content.
package policywatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runtrust/runtrust/internal/periodic"
)

// DefaultInterval is how often a file is polled when Options.Interval is zero.
const DefaultInterval = 10 * time.Second

// Status is where a policy file stands: the policy in force and, when the file's current content was refused,
// why.
type Status struct {
	// Path is the file as configured (a ConfigMap mount's path, whatever its symlinks resolve to).
	Path string
	// LoadedAt is when the policy in force was loaded; Hash is the sha256 (hex) of the content it was loaded
	// from: the file's and the files it names (Options.Related).
	LoadedAt time.Time
	Hash     string
	// Error is why the file's current content was refused, "" when the policy in force is that content;
	// ErrorAt is when it was first refused. Both clear when a load succeeds again.
	Error   string
	ErrorAt time.Time
}

// Options configure a Watcher.
type Options[P any] struct {
	// Interval is how often Run polls; zero: DefaultInterval.
	Interval time.Duration
	// Related lists the other files a loaded policy was read from (a key, a trusted root), relative to the
	// policy file's directory or absolute: their content is part of the hash, so that replacing one reloads
	// the policy. Nil: only the file itself.
	Related func(P) []string
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Watcher holds a policy loaded from a file and loads it again when the file changes.
type Watcher[P any] struct {
	path string
	load func(string) (P, error)
	opts Options[P]
	log  *slog.Logger

	// current is the policy in force with its status; readers take it without a lock, each sees one whole
	// snapshot.
	current atomic.Pointer[snapshot[P]]
	// mu serialises Check: one poll at a time decides what the file's content is.
	mu sync.Mutex
	// refused is the hash and reason of the last refused content, so a failure is logged once, not each poll.
	refusedHash, refusedErr string
}

type snapshot[P any] struct {
	policy P
	status Status
}

// New loads path with load (the policy package's LoadFile) and returns a Watcher holding it; nothing is
// polled until Run. An error is the load's: a service does not start with a policy it cannot read.
func New[P any](path string, load func(string) (P, error), opts Options[P], log *slog.Logger) (*Watcher[P], error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w := &Watcher[P]{path: path, load: load, opts: opts, log: log}
	// The hash is taken before the load: should the file change in between, the hash is of the older content,
	// and the next poll loads the newer content again rather than missing it.
	base, err := fileHash(path)
	if err != nil {
		return nil, err
	}
	p, err := load(path)
	if err != nil {
		return nil, err
	}
	h := w.withRelated(base, p)
	w.current.Store(&snapshot[P]{policy: p, status: Status{Path: path, LoadedAt: opts.Now(), Hash: h}})
	return w, nil
}

// Current is the policy in force.
func (w *Watcher[P]) Current() P { return w.current.Load().policy }

// Status is the file's status now.
func (w *Watcher[P]) Status() Status { return w.current.Load().status }

// Path is the watched file.
func (w *Watcher[P]) Path() string { return w.path }

// Run polls the file every Options.Interval until ctx ends, calling onChange (if not nil) with each policy a
// changed file loads to, after it is in force.
func (w *Watcher[P]) Run(ctx context.Context, onChange func(context.Context, P)) {
	periodic.Every(ctx, w.opts.Interval, func(ctx context.Context) {
		if p, changed := w.Check(); changed && onChange != nil {
			onChange(ctx, p)
		}
	})
}

// Check polls the file once: when its content differs from the policy in force it is loaded, and put in force
// when that succeeds (changed is true, p the new policy). A refused load keeps the policy in force and is
// logged and recorded in Status; the content is loaded again at each poll while it is refused, since a file it
// names (a key) may be what gets fixed.
func (w *Watcher[P]) Check() (p P, changed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := w.current.Load()
	var h string
	base, err := fileHash(w.path)
	if err == nil {
		// The content as the policy in force would see it: the file and the files that policy names.
		h = w.withRelated(base, cur.policy)
		if h == cur.status.Hash && cur.status.Error == "" {
			return cur.policy, false
		}
		var np P
		if np, err = w.load(w.path); err == nil {
			nh := w.withRelated(base, np)
			if nh == cur.status.Hash {
				// Back to the content in force (a refused edit was reverted): nothing to apply.
				w.log.Info("policy file accepted again, unchanged from the policy in force", "file", w.path)
				w.refusedHash, w.refusedErr = "", ""
				w.current.Store(&snapshot[P]{policy: cur.policy, status: Status{Path: w.path, LoadedAt: cur.status.LoadedAt, Hash: cur.status.Hash}})
				return cur.policy, false
			}
			w.refusedHash, w.refusedErr = "", ""
			w.current.Store(&snapshot[P]{policy: np, status: Status{Path: w.path, LoadedAt: w.opts.Now(), Hash: nh}})
			w.log.Info("policy file reloaded", "file", w.path, "sha256", nh)
			return np, true
		}
	}
	w.refuse(cur, h, err)
	return cur.policy, false
}

// refuse records why the file's content (of hash h; "" when unreadable) was refused, logging it the first time.
func (w *Watcher[P]) refuse(cur *snapshot[P], h string, err error) {
	msg := err.Error()
	if h == w.refusedHash && msg == w.refusedErr {
		return
	}
	w.refusedHash, w.refusedErr = h, msg
	w.log.Error("policy file refused; the policy loaded before stays in force", "file", w.path, "error", msg,
		"in_force_since", cur.status.LoadedAt, "in_force_sha256", cur.status.Hash)
	st := cur.status
	st.Error, st.ErrorAt = msg, w.opts.Now()
	w.current.Store(&snapshot[P]{policy: cur.policy, status: st})
}

// withRelated folds the hashes of the files p names into the file's own hash h. A related file that cannot
// be read is folded in as its error, so that its return counts as a change.
func (w *Watcher[P]) withRelated(h string, p P) string {
	if w.opts.Related == nil {
		return h
	}
	names := w.opts.Related(p)
	if len(names) == 0 {
		return h
	}
	s := sha256.New()
	io.WriteString(s, h)
	dir := filepath.Dir(w.path)
	for _, n := range names {
		if !filepath.IsAbs(n) {
			n = filepath.Join(dir, n)
		}
		rh, err := fileHash(n)
		if err != nil {
			rh = "error: " + err.Error()
		}
		fmt.Fprintf(s, "\x00%s\x00%s", n, rh)
	}
	return hex.EncodeToString(s.Sum(nil))
}

// fileHash is the sha256 (hex) of a file's content as its path resolves now (through any symlinks), streamed:
// the policy's load bounds the size it accepts, not the hash.
func fileHash(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := sha256.New()
	if _, err := io.Copy(s, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(s.Sum(nil)), nil
}
