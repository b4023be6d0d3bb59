package store_test

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/store/storetest"
)

// TestCopyEventsRoundTrip: rows written with the store's own binary COPY encoder read back from PostgreSQL as
// they went in, including the edges of each type (extreme integers, times before 2000 and with nanoseconds,
// empty and non-ASCII text, empty and long arrays).
func TestCopyEventsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Options{Now: func() time.Time { return t0 }})
	c := enrol(t, s, "a")
	if err := s.MaintainPartitions(ctx); err != nil {
		t.Fatal(err)
	}
	long := make([]string, 300)
	for i := range long {
		long[i] = strings.Repeat("x", i)
	}
	execs := []store.ExecEvent{
		{Time: t0.Add(123456789 * time.Nanosecond), ContainerID: "cid", ImageDigest: digest('a'), PID: math.MaxInt64,
			ParentPID: math.MinInt64, UserID: -1, ExecutablePath: "/bin/ünïcödé 🙂", SHA256: strings.Repeat("ab", 32),
			CommandArgs: []string{"sh", "", "-c", "echo 'a\tb'"}, WorkingDirectory: "/"},
		{Time: t0.Add(-time.Hour), CommandArgs: nil},
		{Time: t0.Add(-2 * time.Hour), CommandArgs: []string{}, ExecutablePath: "/x"},
		{Time: t0.Add(-3 * time.Hour), CommandArgs: long},
	}
	files := []store.FileOpenEvent{
		{Time: t0.Add(999 * time.Microsecond), ContainerID: "cid", ImageDigest: digest('b'), PID: 0, ExecutablePath: "",
			FilePath: "/etc/passwd", Flags: math.MaxInt64},
	}
	if err := s.CopyEvents(ctx, c.ID, execs, files); err != nil {
		t.Fatal(err)
	}
	rows, err := storetest.SQL(t, s).Query(ctx, "SELECT "+strings.Join(store.ExecEventColumns[1:], ", ")+" FROM exec_events ORDER BY time DESC")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ExecEvent, error) {
		var e store.ExecEvent
		err := r.Scan(&e.Time, &e.ContainerID, &e.ImageDigest, &e.PID, &e.ParentPID, &e.ExecutablePath, &e.SHA256,
			&e.CommandArgs, &e.UserID, &e.WorkingDirectory)
		e.Time = e.Time.UTC()
		return e, err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range execs {
		want := execs[i]
		want.Time = want.Time.Truncate(time.Microsecond)
		if want.CommandArgs == nil {
			want.CommandArgs = []string{}
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("exec %d:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
	var f store.FileOpenEvent
	var cluster int64
	if err := storetest.SQL(t, s).QueryRow(ctx, "SELECT "+strings.Join(store.FileEventColumns, ", ")+" FROM file_events").Scan(
		&cluster, &f.Time, &f.ContainerID, &f.ImageDigest, &f.PID, &f.ExecutablePath, &f.FilePath, &f.Flags); err != nil {
		t.Fatal(err)
	}
	f.Time = f.Time.UTC()
	if cluster != c.ID || !reflect.DeepEqual(f, files[0]) {
		t.Fatalf("file event: cluster %d, %+v; want %d, %+v", cluster, f, c.ID, files[0])
	}
	// A pre-2000 time goes before the table's partitions: the COPY fails whole, with PostgreSQL's reason.
	err = s.CopyEvents(ctx, c.ID, []store.ExecEvent{{Time: time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)}}, nil)
	if err == nil || !strings.Contains(err.Error(), "no partition") {
		t.Fatalf("an event outside every partition: %v", err)
	}
}
