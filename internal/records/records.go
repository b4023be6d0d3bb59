// Package records is the record contract: every event name and attribute key that runtrust components put on
// OTLP log records. docs/records.md describes each one; records_test.go fails when the two disagree.
//
// OpenTelemetry semantic-convention names are used wherever one exists; only what has none lives under
// "runtrust.". No component spells an attribute key as a string literal: it uses a constant from here.
package records

// Event names: the log record's EventName says what the record is.
const (
	EventProcessExec  = "runtrust.process.exec"
	EventFileOpen     = "runtrust.file.open"
	EventK8sNode      = "runtrust.k8s.node"
	EventK8sWorkload  = "runtrust.k8s.workload"
	EventK8sPod       = "runtrust.k8s.pod"
	EventK8sContainer = "runtrust.k8s.container"
	EventSensorHealth = "runtrust.sensor.health"
)

// Resource attributes: where a record comes from.
const (
	AttrK8sClusterName = "k8s.cluster.name"
	AttrK8sClusterUID  = "k8s.cluster.uid"
	AttrK8sNodeName    = "k8s.node.name"
	AttrHostName       = "host.name"
)

// Process and file attributes (sensor records).
const (
	AttrProcessPID              = "process.pid"
	AttrProcessParentPID        = "process.parent_pid"
	AttrProcessExecutablePath   = "process.executable.path"
	AttrProcessCommandArgs      = "process.command_args"
	AttrProcessUserID           = "process.user.id"
	AttrProcessWorkingDirectory = "process.working_directory"
	AttrProcessExecutableSHA256 = "runtrust.process.executable.sha256"
	AttrFilePath                = "file.path"
	AttrFileFlags               = "runtrust.file.flags"
)

// Kubernetes object attributes (inventory records, and sensor records once attributed).
const (
	AttrK8sNodeUID       = "k8s.node.uid"
	AttrK8sNamespaceName = "k8s.namespace.name"
	AttrK8sPodName       = "k8s.pod.name"
	AttrK8sPodUID        = "k8s.pod.uid"
	AttrK8sContainerName = "k8s.container.name"
	AttrK8sWorkloadKind  = "runtrust.k8s.workload.kind"
	AttrK8sWorkloadName  = "runtrust.k8s.workload.name"
	AttrK8sWorkloadUID   = "runtrust.k8s.workload.uid"
	AttrK8sChange        = "runtrust.k8s.change"
)

// Values of AttrK8sChange.
const (
	ChangeAdded    = "added"
	ChangeUpdated  = "updated"
	ChangeDeleted  = "deleted"
	ChangeSnapshot = "snapshot"
)

// Container and image attributes.
const (
	AttrContainerID         = "container.id"
	AttrContainerImageName  = "container.image.name"
	AttrContainerImageTags  = "container.image.tags"
	AttrImageRunningDigest  = "runtrust.image.running_digest"
	AttrImagePullPolicy     = "runtrust.image.pull_policy"
	AttrSensorEventsSeen    = "runtrust.sensor.events_seen"
	AttrSensorEventsDropped = "runtrust.sensor.events_dropped"
	AttrSensorKernel        = "runtrust.sensor.kernel"
	AttrSensorProgramStatus = "runtrust.sensor.program_status"
)

// Findings that processors add.
const (
	AttrImageRef            = "runtrust.image.ref"
	AttrImageRefError       = "runtrust.image.ref_error"
	AttrImagePullRef        = "runtrust.image.pull_ref"
	AttrRegistryHost        = "runtrust.registry.host"
	AttrRegistryTrusted     = "runtrust.registry.trusted"
	AttrImageTagMutable     = "runtrust.image.tag_mutable"
	AttrImageIntegrity      = "runtrust.image.integrity"
	AttrImageExpectedDigest = "runtrust.image.expected_digest"
	AttrRiskSeverity        = "runtrust.risk.severity"
	AttrRiskReasons         = "runtrust.risk.reasons"
)

// Values of AttrImageIntegrity.
const (
	IntegrityVerified        = "verified"
	IntegrityStaleTag        = "stale_tag"
	IntegrityDigestMismatch  = "digest_mismatch"
	IntegrityArtifactMissing = "artifact_missing"
	IntegrityUnverified      = "unverified"
)

// Values of AttrRiskSeverity, lowest first. internal/risk orders them.
const (
	SeverityNone     = "none"
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Reason codes that start an entry of AttrRiskReasons ("code: human-readable detail").
const (
	ReasonUntrustedRegistry = "untrusted_registry"
	ReasonUntrustedByPolicy = "untrusted_by_policy"
)
