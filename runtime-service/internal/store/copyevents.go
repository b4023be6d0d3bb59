package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The raw event tables are written with COPY in PostgreSQL's binary format, encoded here rather than by pgx.
// pgx's CopyFrom takes each row as []any and finds an encode plan for every value: boxing and planning cost more
// Go CPU per event than decoding its OTLP record. The rows here have a fixed shape (bigint, timestamptz, text,
// text[]), and the values were checked at decode (valid UTF-8, no NUL), so writing the format directly is short.
// TestCopyEventsRoundTrip reads every column back.

// copyHeader is the binary COPY signature, flags and header extension length.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// eventCopy accumulates one table's rows.
type eventCopy struct {
	buf  []byte
	rows int
}

func (c *eventCopy) begin(fields int) {
	if c.buf == nil {
		c.buf = append(make([]byte, 0, 64<<10), copyHeader...)
	}
	c.buf = binary.BigEndian.AppendUint16(c.buf, uint16(fields))
	c.rows++
}

func (c *eventCopy) int8(v int64) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 8)
	c.buf = binary.BigEndian.AppendUint64(c.buf, uint64(v))
}

// y2k is PostgreSQL's timestamp epoch, in microseconds since the Unix epoch.
const y2k = 946684800 * 1000000

// timestamptz writes t as microseconds since 2000-01-01 UTC, truncating nanoseconds as pgx does.
func (c *eventCopy) timestamptz(t time.Time) {
	c.int8(t.Unix()*1000000 + int64(t.Nanosecond())/1000 - y2k)
}

func (c *eventCopy) text(s string) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(s)))
	c.buf = append(c.buf, s...)
}

// textOID is the type of text[]'s elements.
const textOID = 25

// textArray writes a one-dimensional text[] (an empty one has no dimensions, as PostgreSQL writes it).
func (c *eventCopy) textArray(a []string) {
	size := 12
	if len(a) > 0 {
		size += 8
	}
	for _, s := range a {
		size += 4 + len(s)
	}
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(size))
	dims := uint32(0)
	if len(a) > 0 {
		dims = 1
	}
	c.buf = binary.BigEndian.AppendUint32(c.buf, dims)
	c.buf = binary.BigEndian.AppendUint32(c.buf, 0) // no NULL elements
	c.buf = binary.BigEndian.AppendUint32(c.buf, textOID)
	if len(a) > 0 {
		c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(a)))
		c.buf = binary.BigEndian.AppendUint32(c.buf, 1) // lower bound
	}
	for _, s := range a {
		c.text(s)
	}
}

// beginEvent starts a row of an event table with the columns every event table begins with (cluster_id, time,
// container_id, image_digest, pid: ExecEventColumns and FileEventColumns share that head).
func (c *eventCopy) beginEvent(columns int, cluster int64, t time.Time, containerID, digest string, pid int64) {
	c.begin(columns)
	c.int8(cluster)
	c.timestamptz(t)
	c.text(containerID)
	c.text(digest)
	c.int8(pid)
}

// addExec appends an exec_events row (ExecEventColumns order) with the event's resolved digest.
func (c *eventCopy) addExec(cluster int64, e *ExecEvent, digest string) {
	c.beginEvent(len(ExecEventColumns), cluster, e.Time, e.ContainerID, digest, e.PID)
	c.int8(e.ParentPID)
	c.text(e.ExecutablePath)
	c.text(e.SHA256)
	c.textArray(e.CommandArgs)
	c.int8(e.UserID)
	c.text(e.WorkingDirectory)
}

// addFile appends a file_events row (FileEventColumns order).
func (c *eventCopy) addFile(cluster int64, f *FileOpenEvent, digest string) {
	c.beginEvent(len(FileEventColumns), cluster, f.Time, f.ContainerID, digest, f.PID)
	c.text(f.ExecutablePath)
	c.text(f.FilePath)
	c.int8(f.Flags)
}

// copyTo sends the rows to table (its columns in cols order) in tx.
func (c *eventCopy) copyTo(ctx context.Context, tx pgx.Tx, table string, cols []string) error {
	if c.rows == 0 {
		return nil
	}
	c.buf = binary.BigEndian.AppendUint16(c.buf, 0xffff) // trailer
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary)", pgx.Identifier{table}.Sanitize(), strings.Join(cols, ", "))
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(c.buf), sql)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != int64(c.rows) {
		return fmt.Errorf("COPY %s stored %d rows of %d", table, tag.RowsAffected(), c.rows)
	}
	return nil
}

// CopyEvents COPYs events into the raw event tables as ingest does, each with its own ImageDigest, in one
// transaction of its own. It is the load test's baseline: the same rows, the same encoder, none of the ingest's
// other work.
func (s *Store) CopyEvents(ctx context.Context, clusterID int64, execs []ExecEvent, files []FileOpenEvent) error {
	var ec, fc eventCopy
	for i := range execs {
		ec.addExec(clusterID, &execs[i], execs[i].ImageDigest)
	}
	for i := range files {
		fc.addFile(clusterID, &files[i], files[i].ImageDigest)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := ec.copyTo(ctx, tx, "exec_events", ExecEventColumns); err != nil {
			return fmt.Errorf("copy exec events: %w", err)
		}
		if err := fc.copyTo(ctx, tx, "file_events", FileEventColumns); err != nil {
			return fmt.Errorf("copy file events: %w", err)
		}
		return nil
	})
}
