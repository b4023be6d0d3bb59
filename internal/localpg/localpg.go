// Package localpg runs a PostgreSQL server from the binaries installed on this machine, in a directory it owns:
// initdb on first use, pg_ctl to start and stop. The runtime service uses it as its embedded default (no DSN
// configured) and internal/pgtest uses it for the throwaway cluster of each test package, so both go through the
// same code.
//
// PostgreSQL refuses to run as root. When this process is root, every PostgreSQL command runs as the "postgres"
// OS user (or Options.OSUser) and the directory is handed to that user.
package localpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runtrust/runtrust/internal/loopback"
)

// Superuser is the database superuser initdb creates. Connections from loopback are trusted (see initdb below):
// the server listens on 127.0.0.1 only and its socket directory is private.
const Superuser = "postgres"

// Options say where and how to run the server.
type Options struct {
	// Dir holds everything: Dir/data (the cluster), Dir/sock (the Unix socket), Dir/postgres.log.
	Dir string
	// DataDir, when set, holds the cluster instead of Dir/data: a volume of its own (tests fill one to show what
	// a full database disk does). It is created if absent; initdb needs it empty.
	DataDir string
	// WALDir, when set, holds the write-ahead log outside the cluster (initdb --waldir), as production setups do
	// with a volume of its own. It applies when the cluster is initialised.
	WALDir string
	// BinDir holds initdb, pg_ctl and postgres. Empty: FindBinDir.
	BinDir string
	// Port on 127.0.0.1. 0: a free port, chosen at the first start and kept for restarts.
	Port int
	// Durable keeps fsync on. Tests turn it off: it only matters when the machine, not the server, crashes.
	Durable bool
	// Settings are extra postgresql.conf settings passed at start ("-c name=value").
	Settings map[string]string
	// OSUser runs the server when this process is root. Empty: "postgres".
	OSUser string
	// StartTimeout bounds pg_ctl start. Zero: 60s.
	StartTimeout time.Duration
}

// Server is a running (or stopped) local PostgreSQL.
type Server struct {
	opts    Options
	dir     string
	binDir  string
	dataDir string
	sockDir string
	logFile string
	port    int
	cred    *syscall.Credential // nil unless this process is root
}

// ErrNoBinaries says no PostgreSQL installation was found; the message names where we looked.
var ErrNoBinaries = errors.New("PostgreSQL binaries not found")

// FindBinDir returns the directory holding initdb and pg_ctl: $RUNTRUST_PG_BIN, else the newest
// /usr/lib/postgresql/*/bin (Debian, Ubuntu), else the directory of pg_ctl on $PATH.
func FindBinDir() (string, error) {
	if d := os.Getenv("RUNTRUST_PG_BIN"); d != "" {
		if hasBinaries(d) {
			return d, nil
		}
		return "", fmt.Errorf("%w in RUNTRUST_PG_BIN=%s (need initdb, pg_ctl, postgres)", ErrNoBinaries, d)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if hasBinaries(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil && hasBinaries(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("%w: looked in $RUNTRUST_PG_BIN, /usr/lib/postgresql/*/bin and $PATH (install postgresql-15)", ErrNoBinaries)
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func hasBinaries(dir string) bool {
	for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
			return false
		}
	}
	return true
}

// New prepares a server in opts.Dir: creates the directory and runs initdb when it holds no cluster yet.
// It does not start the server.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("localpg: Options.Dir is empty")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	} else if !hasBinaries(binDir) {
		return nil, fmt.Errorf("%w in %s (need initdb, pg_ctl, postgres)", ErrNoBinaries, binDir)
	}
	dataDir := filepath.Join(dir, "data")
	if opts.DataDir != "" {
		if dataDir, err = filepath.Abs(opts.DataDir); err != nil {
			return nil, fmt.Errorf("localpg: %w", err)
		}
	}
	s := &Server{
		opts:    opts,
		dir:     dir,
		binDir:  binDir,
		dataDir: dataDir,
		sockDir: filepath.Join(dir, "sock"),
		logFile: filepath.Join(dir, "postgres.log"),
		port:    opts.Port,
	}
	if os.Geteuid() == 0 {
		if s.cred, err = osUserCredential(opts.OSUser); err != nil {
			return nil, err
		}
	}
	dirs := []string{dir, s.sockDir}
	if opts.DataDir != "" {
		dirs = append(dirs, dataDir) // its parent may be a mount point the server's user cannot write
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("localpg: create %s: %w", d, err)
		}
		if err := s.chown(d); err != nil {
			return nil, err
		}
	}
	if s.cred != nil {
		for _, d := range dirs {
			if err := checkReachable(d, s.cred); err != nil {
				return nil, err
			}
		}
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := s.initdb(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func osUserCredential(name string) (*syscall.Credential, error) {
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("localpg: running as root, and PostgreSQL will not; the OS user %q to run it as: %w", name, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// checkReachable fails early, with a message that says what to do, when the OS user PostgreSQL runs as cannot
// traverse the directories above its own (a data directory under /root, say).
func checkReachable(dir string, cred *syscall.Credential) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		if ok {
			can := mode&0o001 != 0 ||
				(st.Uid == cred.Uid && mode&0o100 != 0) ||
				(st.Gid == cred.Gid && mode&0o010 != 0)
			if !can {
				return fmt.Errorf("localpg: PostgreSQL runs as uid %d (this process is root) and cannot enter %s (mode %v): choose a directory outside it", cred.Uid, d, mode)
			}
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}

func (s *Server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		return fmt.Errorf("localpg: hand %s to uid %d: %w", path, s.cred.Uid, err)
	}
	return nil
}

func (s *Server) initdb(ctx context.Context) error {
	args := []string{
		"-D", s.dataDir,
		"-U", Superuser,
		// Trust on loopback: the server listens on 127.0.0.1 only, and it is a single-user development or test
		// server. A shared or production server is configured with a DSN instead.
		"--auth=trust",
		"--encoding=UTF8",
		"--locale=C",
	}
	if !s.opts.Durable {
		args = append(args, "--no-sync")
	}
	if s.opts.WALDir != "" {
		wal, err := filepath.Abs(s.opts.WALDir)
		if err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		args = append(args, "--waldir="+wal)
	}
	if out, err := s.run(ctx, "initdb", args...); err != nil {
		return fmt.Errorf("localpg: initdb %s: %w\n%s", s.dataDir, err, out)
	}
	return nil
}

// Start starts the server and waits until it accepts connections. With Options.Port 0 it picks a free port.
func (s *Server) Start(ctx context.Context) error {
	if s.Running(ctx) {
		// A server left behind by a process that was killed. It may listen elsewhere; restart it our way.
		if err := s.Stop(ctx); err != nil {
			return err
		}
	}
	if s.port != 0 {
		// A fixed port, or a restart: the same port, so DSNs handed out before stay good.
		return s.start(ctx)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := loopback.FreePort()
		if err != nil {
			return err
		}
		s.port = p
		if lastErr = s.start(ctx); lastErr == nil {
			return nil
		}
		// Another process may have taken the free port between our probe and the server's bind: try another.
		s.port = 0
	}
	return lastErr
}

func (s *Server) start(ctx context.Context) error {
	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"port":                    strconv.Itoa(s.port),
		"unix_socket_directories": s.sockDir,
	}
	if !s.opts.Durable {
		settings["fsync"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range s.opts.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var o strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&o, " -c %s=%s", k, quoteOpt(settings[k]))
	}
	timeout := s.opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	out, err := s.run(ctx, "pg_ctl", "start", "-w", "-t", strconv.Itoa(int(timeout.Seconds())),
		"-D", s.dataDir, "-l", s.logFile, "-o", strings.TrimSpace(o.String()))
	if err != nil {
		return fmt.Errorf("localpg: pg_ctl start (port %d): %w\n%s\n%s", s.port, err, out, s.logTail())
	}
	return nil
}

// quoteOpt quotes a value for the postgres command line pg_ctl passes through a shell.
func quoteOpt(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// Stop shuts the server down fast: open sessions are ended, committed work is kept.
func (s *Server) Stop(ctx context.Context) error { return s.stop(ctx, "fast") }

// Kill stops the server the way a crash would (immediate mode: no checkpoint). Tests use it to show that nothing
// acknowledged is lost.
func (s *Server) Kill(ctx context.Context) error { return s.stop(ctx, "immediate") }

func (s *Server) stop(ctx context.Context, mode string) error {
	if !s.Running(ctx) {
		return nil
	}
	if out, err := s.run(ctx, "pg_ctl", "stop", "-w", "-m", mode, "-D", s.dataDir); err != nil {
		return fmt.Errorf("localpg: pg_ctl stop -m %s: %w\n%s", mode, err, out)
	}
	return nil
}

// Running says whether a server runs on this data directory.
func (s *Server) Running(ctx context.Context) bool {
	_, err := s.run(ctx, "pg_ctl", "status", "-D", s.dataDir)
	return err == nil
}

// Port is the port the server listens on (after Start).
func (s *Server) Port() int { return s.port }

// Dir is the directory the server owns.
func (s *Server) Dir() string { return s.dir }

// DSN is a connection string for database db as the superuser, over loopback TCP.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, s.port, db)
}

// LogTail returns the end of the server's log, for error messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "postgres.log (end):\n" + string(b)
}

func (s *Server) run(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, bin), args...)
	cmd.Dir = s.dir
	// A clean environment apart from what the tools need: PG* variables of the caller must not redirect them.
	cmd.Env = []string{"PATH=" + s.binDir + ":/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// pg_ctl start leaves the server running with our stdout open unless it is a file; give it none.
	cmd.Stdin = nil
	err := cmd.Run()
	return out.Bytes(), err
}
