package runtimesensorreceiver

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/runtrust/runtrust/internal/cgrouptest"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/metadata"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/sensor"
)

// captureEvents runs `cat <file>` with three arguments in a cgroup named like a containerd container and returns
// the raw ring-buffer records of its exec and of its open of the file, as the kernel wrote them.
func captureEvents(b *testing.B) (execRaw, openRaw []byte) {
	if err := sensor.Preflight(true); err != nil {
		b.Skipf("the runtime sensor cannot load on this machine: %v", err)
	}
	s, err := sensor.Open(sensor.Options{CaptureOpens: true, Polled: true, RingBufferBytes: 1 << 22})
	require.NoError(b, err)
	defer s.Close()
	f := filepath.Join(b.TempDir(), "config.yaml")
	require.NoError(b, os.WriteFile(f, []byte("x: 1\n"), 0o644))
	cg, _ := cgrouptest.Containerd(b)
	pid := uint32(runInCgroup(b, cg, "/bin/cat", "-u", "--", f))
	_, err = s.Drain(func(raw []byte) {
		ev, err := sensor.Decode(raw)
		require.NoError(b, err)
		switch e := ev.(type) {
		case *sensor.ExecEvent:
			if e.TGID == pid && filepath.Base(e.Path) == "cat" {
				execRaw = append([]byte(nil), raw...)
			}
		case *sensor.OpenEvent:
			if e.TGID == pid && e.Path == f {
				openRaw = append([]byte(nil), raw...)
			}
		}
	})
	require.NoError(b, err)
	require.NotNil(b, execRaw, "no exec event for cat")
	require.NotNil(b, openRaw, "no open event for %s", f)
	return execRaw, openRaw
}

// BenchmarkPipeline is the receiver's user-space cost per event, without the kernel: decoding a real raw
// record and building its log record, in steady state (the container's attribution and the executable's hash
// are cached), the batches handed to a no-op consumer every 1,024 records. Its inverse is the most events per
// second one CPU turns into records.
func BenchmarkPipeline(b *testing.B) {
	execRaw, openRaw := captureEvents(b)
	for _, tc := range []struct {
		name string
		raw  []byte
	}{{"exec", execRaw}, {"open", openRaw}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := createDefaultConfig().(*Config)
			cfg.NodeName = "bench"
			r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop(), nil)
			require.NoError(b, err)
			ctx := context.Background()
			r.handle(ctx, tc.raw) // the hash is computed (and cached) here, as for the first exec of a file
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				r.handle(ctx, tc.raw)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			require.Zero(b, r.decodeErrors.Load())
		})
	}
}
