// Command runtrust-demo is `make demo`: the testbed's parts left running on this machine with an image for
// every finding runtrust makes (testbed.StartDemo), until Ctrl-C, which stops everything and removes what it
// made. -ready-file lets a script (or the demo's own test) wait for it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/runtrust/runtrust/internal/programtb"
	"github.com/runtrust/runtrust/testbed"
)

// Ready is what -ready-file holds once every finding shows in the API.
type Ready struct {
	UI     string              `json:"ui"`
	Images []testbed.DemoImage `json:"images"`
}

func main() {
	dir := flag.String("dir", ".run/demo", "directory for everything the demo makes (removed when it stops)")
	httpAddr := flag.String("http", "127.0.0.1:8080", "address of the UI and API")
	readyFile := flag.String("ready-file", "", "write the UI address and the demo's images here (JSON) once every finding shows")
	containers := flag.String("containers", "auto", "real containers watched by the sensor: auto (when this machine can), on, off")
	flag.Parse()
	logger := log.New(os.Stdout, "runtrust demo: ", log.Ltime)
	if err := run(logger, *dir, *httpAddr, *readyFile, *containers); err != nil {
		logger.Printf("%v", err)
		os.Exit(1)
	}
}

func run(logger *log.Logger, dir, httpAddr, readyFile, containers string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	withContainers, why, err := containersWanted(containers)
	if err != nil {
		return err
	}
	if err := freshDir(logger, abs); err != nil {
		return err
	}
	defer os.RemoveAll(abs)
	// Everything the parts make in temporary directories (containerd's, the registries') goes under abs too,
	// so one removal leaves nothing behind.
	os.Setenv("TMPDIR", filepath.Join(abs, "tmp"))
	if err := os.Mkdir(os.Getenv("TMPDIR"), 0o755); err != nil {
		return err
	}
	logger.Printf("starting in %s; the UI will be at http://%s; Ctrl-C stops everything and removes it", abs, httpAddr)
	if !withContainers {
		logger.Printf("without real containers: %s", why)
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	h := programtb.New(ctx, "runtrust-demo", abs, logger)
	started := make(chan error, 1)
	var demo *testbed.Demo
	go func() {
		started <- h.Run(func() {
			demo = testbed.StartDemo(h, testbed.DemoOptions{Dir: abs, HTTPAddr: httpAddr, Containers: withContainers,
				Progress: func(step string) { logger.Print(step) }})
		})
	}()
	select {
	case err = <-started:
	case <-ctx.Done():
		logger.Print("stopping before the demo was ready")
		stopWhileStarting(h, started)
		return errors.New("interrupted")
	}
	if err != nil {
		h.Stop()
		return fmt.Errorf("the demo did not start (what failed is above): %w", err)
	}
	printReady(logger, demo)
	if readyFile != "" {
		if err := writeReady(readyFile, demo); err != nil {
			h.Stop()
			return err
		}
	}
	<-ctx.Done()
	logger.Print("stopping: containers, collectors, the service and its PostgreSQL, the registries")
	start := time.Now()
	h.Stop()
	if h.Failed() {
		return errors.New("something did not stop cleanly (above)")
	}
	logger.Printf("stopped in %s; %s removed", time.Since(start).Round(100*time.Millisecond), abs)
	return nil
}

// containersWanted decides whether the demo runs real containers and the sensor, and if not, why.
func containersWanted(flagValue string) (bool, string, error) {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "not root (the sensor loads eBPF programs and containerd runs containers)")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		missing = append(missing, "no kernel BTF at /sys/kernel/btf/vmlinux")
	}
	for _, bin := range []string{"containerd", "runc", "ctr"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin+" not on PATH (apt-get install -y containerd runc)")
		}
	}
	why := strings.Join(missing, "; ")
	switch flagValue {
	case "auto":
		return len(missing) == 0, why, nil
	case "on":
		if len(missing) > 0 {
			return false, why, fmt.Errorf("-containers=on, but this machine cannot run them: %s", why)
		}
		return true, "", nil
	case "off":
		return false, "-containers=off", nil
	}
	return false, "", fmt.Errorf("-containers is %q; want auto, on or off", flagValue)
}

// freshDir makes dir empty; what a demo killed before its cleanup left is removed, and said so.
func freshDir(logger *log.Logger, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		logger.Printf("removing what an earlier demo left in %s", dir)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	return os.MkdirAll(dir, 0o755)
}

// stopWhileStarting stops what has started so far; the start, which then fails, may register more before it
// ends, so those are stopped once it has.
func stopWhileStarting(h *programtb.Harness, started <-chan error) {
	h.Stop()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
	}
	h.Stop()
}

func printReady(logger *log.Logger, demo *testbed.Demo) {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SCENARIO\tIMAGE\tVERDICT\tFINDING")
	for _, img := range demo.Images {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", img.Scenario, img.Ref, img.Verdict, img.Finding)
	}
	w.Flush()
	logger.Printf("ready: every finding shows. Open %s/#/images\n%s", demo.API, b.String())
}

func writeReady(path string, demo *testbed.Demo) error {
	b, err := json.MarshalIndent(Ready{UI: demo.API, Images: demo.Images}, "", "  ")
	if err != nil {
		return err
	}
	// Written whole then renamed, so a reader never sees half of it.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
