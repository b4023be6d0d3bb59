package store

import (
	"time"

	"github.com/runtrust/runtrust/internal/records"
)

// Batch is one ingest call's records, decoded and validated, ready to be applied in one transaction.
type Batch struct {
	Nodes        []Node
	Workloads    []Workload
	Pods         []Pod
	Containers   []Container
	Execs        []ExecEvent
	FileOpens    []FileOpenEvent
	SensorHealth []SensorHealth
}

// Len is the number of records in the batch.
func (b *Batch) Len() int {
	return len(b.Nodes) + len(b.Workloads) + len(b.Pods) + len(b.Containers) + len(b.Execs) +
		len(b.FileOpens) + len(b.SensorHealth)
}

// Node is a runtrust.k8s.node record.
type Node struct {
	UID, Name string
	Time      time.Time
	Deleted   bool
}

// Workload is a runtrust.k8s.workload record.
type Workload struct {
	UID, Kind, Name, Namespace string
	Time                       time.Time
	Deleted                    bool
}

// Pod is a runtrust.k8s.pod record.
type Pod struct {
	UID, Name, Namespace, NodeName string
	WorkloadUID, WorkloadKind      string
	WorkloadName                   string
	Time                           time.Time
	Deleted                        bool
}

// Container is a runtrust.k8s.container record with the findings the processors added.
type Container struct {
	PodUID, Name, ContainerID         string
	Namespace, PodName, NodeName      string
	WorkloadUID, WorkloadKind         string
	WorkloadName                      string
	ImageName, ImageRef, RegistryHost string
	RegistryTrusted, TagMutable       *bool
	RunningDigest, PullPolicy         string
	Integrity, ExpectedDigest         string
	Severity                          string
	Reasons                           []string
	Time                              time.Time
	Deleted                           bool
}

// ExecEvent is a runtrust.process.exec record. ImageDigest is the record's running digest when the sensor
// attributed it; otherwise the store resolves it from the container id.
type ExecEvent struct {
	Time                     time.Time
	ContainerID, ImageDigest string
	PID, ParentPID, UserID   int64
	ExecutablePath, SHA256   string
	CommandArgs              []string
	WorkingDirectory         string
}

// FileOpenEvent is a runtrust.file.open record.
type FileOpenEvent struct {
	Time                     time.Time
	ContainerID, ImageDigest string
	PID                      int64
	ExecutablePath, FilePath string
	Flags                    int64
}

// SensorHealth is a runtrust.sensor.health record, per node.
type SensorHealth struct {
	NodeName                  string
	EventsSeen, EventsDropped int64
	Kernel, ProgramStatus     string
	OpenHook, HooksRefused    string
	Time                      time.Time
}

// SeverityRank is records.SeverityRank as the placements table stores it: an absent severity (no processor
// judged the record) ranks 0, below "none".
func SeverityRank(s string) int16 { return int16(records.SeverityRank(s)) }

// VerdictRank is records.VerdictRank as the placements table stores it, so an image that runs under several
// verdicts shows its worst.
func VerdictRank(v string) int16 { return int16(records.VerdictRank(v)) }
