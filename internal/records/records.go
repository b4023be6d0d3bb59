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
	// EventHostContainer is a container in no Kubernetes pod (a host's own containerd, Docker or Podman), as
	// the runtime sensor learns it from the host's runtime: added once its image is known, deleted once gone.
	EventHostContainer = "runtrust.host.container"
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
	// Runtime sensor additions.
	AttrProcessGroupID              = "process.group.id"
	AttrProcessCreationTime         = "process.creation.time"
	AttrProcessArgsCount            = "process.args_count"
	AttrProcessCommandArgsTruncated = "runtrust.process.command_args_truncated"
	AttrProcessOnHost               = "runtrust.process.host"
	AttrProcessExecutableInode      = "runtrust.process.executable.inode"
	AttrCgroupID                    = "runtrust.cgroup.id"
	AttrCgroupPath                  = "runtrust.cgroup.path"
	AttrFileInode                   = "file.inode"
	AttrFileDevice                  = "runtrust.file.device"
	AttrFilePathTruncated           = "runtrust.file.path_truncated"
	AttrFilePathDetached            = "runtrust.file.path_detached"
)

// What the runtime sensor's kernel side reports about a process beyond the keys above: its name (comm) and
// whether the working directory was cut.
const (
	AttrProcessExecutableName            = "process.executable.name"
	AttrProcessWorkingDirectoryTruncated = "runtrust.process.working_directory_truncated"
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
	// Inventory additions: nodes, pods, workloads and containers as the k8s inventory receiver sees them.
	AttrK8sNodeKubeletVersion          = "runtrust.k8s.node.kubelet_version"
	AttrK8sNodeContainerRuntimeVersion = "runtrust.k8s.node.container_runtime_version"
	AttrK8sNodeOSImage                 = "runtrust.k8s.node.os_image"
	AttrHostArch                       = "host.arch"
	AttrK8sPodStatusPhase              = "k8s.pod.status.phase"
	AttrK8sWorkloadImages              = "runtrust.k8s.workload.images"
	AttrK8sContainerKind               = "runtrust.k8s.container.kind"
	AttrK8sContainerRestartCount       = "k8s.container.restart_count"
	AttrK8sContainerStatusState        = "k8s.container.status.state"
	AttrK8sContainerStatusReason       = "k8s.container.status.reason"
	AttrK8sContainerStartTime          = "runtrust.k8s.container.start_time"
)

// Values of AttrK8sContainerKind.
const (
	ContainerKindRegular   = "regular"
	ContainerKindInit      = "init"
	ContainerKindEphemeral = "ephemeral"
)

// Values of AttrK8sContainerStatusState (the semantic conventions' values).
const (
	ContainerStateRunning    = "running"
	ContainerStateWaiting    = "waiting"
	ContainerStateTerminated = "terminated"
)

// Values of AttrImageRunningDigestMissing: why a container record has no AttrImageRunningDigest.
const (
	RunningDigestLocalImageID = "local_image_id"
	RunningDigestNotReported  = "not_reported"
	RunningDigestInvalid      = "invalid_image_id"
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
	// Runtime sensor health additions.
	AttrSensorExecEvents     = "runtrust.sensor.exec_events"
	AttrSensorOpenEvents     = "runtrust.sensor.open_events"
	AttrSensorDedupHits      = "runtrust.sensor.dedup_hits"
	AttrSensorFiltered       = "runtrust.sensor.events_filtered"
	AttrSensorDecodeErrors   = "runtrust.sensor.decode_errors"
	AttrSensorProgramsActive = "runtrust.sensor.programs_attached"
	AttrSensorHashErrors     = "runtrust.sensor.hash_errors"
	AttrSensorOpenHook       = "runtrust.sensor.open_hook"
	AttrSensorHooksRefused   = "runtrust.sensor.hooks_refused"
)

// Container and image attributes the k8s inventory receiver adds.
const (
	AttrContainerImageID = "container.image.id"
	AttrContainerRuntime = "container.runtime.name"
	// AttrImageRunningDigestMissing says why AttrImageRunningDigest is absent; one of the RunningDigest* values.
	AttrImageRunningDigestMissing = "runtrust.image.running_digest_missing"
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
	// AttrImageIntegrityReason says why a verdict is unverified: one of the IntegrityReason values.
	AttrImageIntegrityReason = "runtrust.image.integrity_reason"
	// AttrImageRemediation is what to do about a stale_tag (or other actionable) verdict.
	AttrImageRemediation = "runtrust.image.remediation"
	// AttrImageRegistryCheckedAt is when the registry gave the answer the verdict rests on (RFC 3339, UTC);
	// for unverified, when the last good answer came, absent if there never was one.
	AttrImageRegistryCheckedAt = "runtrust.image.registry_checked_at"
	AttrRiskSeverity           = "runtrust.risk.severity"
	AttrRiskReasons            = "runtrust.risk.reasons"
)

// Values of AttrImageIntegrity.
const (
	IntegrityVerified        = "verified"
	IntegrityStaleTag        = "stale_tag"
	IntegrityDigestMismatch  = "digest_mismatch"
	IntegrityArtifactMissing = "artifact_missing"
	IntegrityUnverified      = "unverified"
)

// Values of AttrImageIntegrityReason: why a verdict is unverified.
const (
	IntegrityReasonTimeout       = "timeout"
	IntegrityReasonUnreachable   = "unreachable"
	IntegrityReasonUnauthorized  = "unauthorized"
	IntegrityReasonRateLimited   = "rate_limited"
	IntegrityReasonRegistryError = "registry_error"
	IntegrityReasonNotConfigured = "not_configured"
	IntegrityReasonImageID       = "image_id"
	IntegrityReasonBadReference  = "bad_reference"
)

// Values of AttrRiskSeverity, lowest first. internal/risk orders them.
const (
	SeverityNone     = "none"
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Reason codes that start an entry of AttrRiskReasons ("code: human-readable detail"). The image integrity
// processor's codes are its verdicts (IntegrityStaleTag, IntegrityDigestMismatch, IntegrityArtifactMissing,
// IntegrityUnverified), so a reason and the verdict it explains read the same.
const (
	ReasonUntrustedRegistry = "untrusted_registry"
	ReasonUntrustedByPolicy = "untrusted_by_policy"
)
