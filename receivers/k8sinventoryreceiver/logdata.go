package k8sinventoryreceiver

import (
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/runtrust/runtrust/internal/records"
)

// The views hold exactly the fields a record carries. An update sends a record only when its view changed, so a
// status heartbeat (a condition's lastHeartbeatTime, say) or a change to a field the contract does not carry
// sends nothing. Views are comparable with ==.

type nodeView struct {
	name, uid, kubelet, runtime, osImage, arch string
}

func nodeViewOf(n *corev1.Node) nodeView {
	i := &n.Status.NodeInfo
	return nodeView{n.Name, string(n.UID), i.KubeletVersion, i.ContainerRuntimeVersion, i.OSImage, i.Architecture}
}

// workloadRef names the workload that owns a pod, resolved through owner references; zero for a bare pod.
type workloadRef struct {
	kind, name, uid string
}

type workloadView struct {
	ref       workloadRef
	namespace string
	images    string // the template's images, joined by "\n" (comparable)
}

// workloadViewOf returns the workload view of a workload object; ok is false for objects that are not
// workloads of their own: a ReplicaSet a Deployment controls, a Job a CronJob controls.
func workloadViewOf(obj any) (v workloadView, ok bool) {
	var tmpl *corev1.PodTemplateSpec
	switch o := obj.(type) {
	case *appsv1.Deployment:
		v.ref, v.namespace, tmpl = workloadRef{kindDeployment, o.Name, string(o.UID)}, o.Namespace, &o.Spec.Template
	case *appsv1.StatefulSet:
		v.ref, v.namespace, tmpl = workloadRef{kindStatefulSet, o.Name, string(o.UID)}, o.Namespace, &o.Spec.Template
	case *appsv1.DaemonSet:
		v.ref, v.namespace, tmpl = workloadRef{kindDaemonSet, o.Name, string(o.UID)}, o.Namespace, &o.Spec.Template
	case *batchv1.CronJob:
		v.ref, v.namespace, tmpl = workloadRef{kindCronJob, o.Name, string(o.UID)}, o.Namespace, &o.Spec.JobTemplate.Spec.Template
	case *appsv1.ReplicaSet:
		if ref := controllerOf(o.OwnerReferences); ref != nil && ref.Kind == kindDeployment {
			return v, false
		}
		v.ref, v.namespace, tmpl = workloadRef{kindReplicaSet, o.Name, string(o.UID)}, o.Namespace, &o.Spec.Template
	case *batchv1.Job:
		if ref := controllerOf(o.OwnerReferences); ref != nil && ref.Kind == kindCronJob {
			return v, false
		}
		v.ref, v.namespace, tmpl = workloadRef{kindJob, o.Name, string(o.UID)}, o.Namespace, &o.Spec.Template
	default:
		return v, false
	}
	var b strings.Builder
	for _, cs := range [][]corev1.Container{tmpl.Spec.InitContainers, tmpl.Spec.Containers} {
		for i := range cs {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(cs[i].Image)
		}
	}
	v.images = b.String()
	return v, true
}

type podView struct {
	namespace, name, uid, node, phase string
	owner                             workloadRef
}

func podViewOf(p *podEntry, owner workloadRef) podView {
	return podView{p.Namespace, p.Name, string(p.UID), p.node, p.phase, owner}
}

type containerView struct {
	kind, name, image, pullPolicy string
	containerID, imageID, state   string
	reason, startTime             string
	restarts                      int32
	hasStatus                     bool
}

// containerViewsOf returns one view per container of the pod: init containers, then containers, then
// ephemeral containers, each joined with its status by name.
func containerViewsOf(p *corev1.Pod) []containerView {
	n := len(p.Spec.InitContainers) + len(p.Spec.Containers) + len(p.Spec.EphemeralContainers)
	out := make([]containerView, 0, n)
	add := func(kind string, c *corev1.Container, statuses []corev1.ContainerStatus) {
		v := containerView{kind: kind, name: c.Name, image: c.Image, pullPolicy: string(c.ImagePullPolicy)}
		for i := range statuses {
			if statuses[i].Name == c.Name {
				s := &statuses[i]
				v.hasStatus = true
				v.containerID, v.imageID, v.restarts = s.ContainerID, s.ImageID, s.RestartCount
				switch {
				case s.State.Running != nil:
					v.state, v.startTime = records.ContainerStateRunning, formatTime(s.State.Running.StartedAt.Time)
				case s.State.Terminated != nil:
					v.state, v.reason = records.ContainerStateTerminated, s.State.Terminated.Reason
					v.startTime = formatTime(s.State.Terminated.StartedAt.Time)
				case s.State.Waiting != nil:
					v.state, v.reason = records.ContainerStateWaiting, s.State.Waiting.Reason
				}
				break
			}
		}
		out = append(out, v)
	}
	for i := range p.Spec.InitContainers {
		add(records.ContainerKindInit, &p.Spec.InitContainers[i], p.Status.InitContainerStatuses)
	}
	for i := range p.Spec.Containers {
		add(records.ContainerKindRegular, &p.Spec.Containers[i], p.Status.ContainerStatuses)
	}
	for i := range p.Spec.EphemeralContainers {
		c := corev1.Container(p.Spec.EphemeralContainers[i].EphemeralContainerCommon)
		add(records.ContainerKindEphemeral, &c, p.Status.EphemeralContainerStatuses)
	}
	return out
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// The kinds a workload record names.
const (
	kindDeployment  = "Deployment"
	kindReplicaSet  = "ReplicaSet"
	kindStatefulSet = "StatefulSet"
	kindDaemonSet   = "DaemonSet"
	kindJob         = "Job"
	kindCronJob     = "CronJob"
)

// recordSink appends records to one plog.Logs under the cluster's resource.
type recordSink struct {
	logs    plog.Logs
	records plog.LogRecordSlice
	now     pcommon.Timestamp
	logger  interface {
		invalidImageID(container, imageID string, err error)
		invalidContainerID(container, containerID string, err error)
	}
}

func (s *recordSink) newRecord(event, change, body string) pcommon.Map {
	lr := s.records.AppendEmpty()
	lr.SetEventName(event)
	lr.SetTimestamp(s.now)
	lr.SetObservedTimestamp(s.now)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetSeverityText("INFO")
	lr.Body().SetStr(body)
	a := lr.Attributes()
	a.PutStr(records.AttrK8sChange, change)
	return a
}

func putNonEmpty(a pcommon.Map, k, v string) {
	if v != "" {
		a.PutStr(k, v)
	}
}

func (s *recordSink) node(v nodeView, change string) {
	a := s.newRecord(records.EventK8sNode, change, "node "+v.name+" "+change)
	a.PutStr(records.AttrK8sNodeName, v.name)
	a.PutStr(records.AttrK8sNodeUID, v.uid)
	putNonEmpty(a, records.AttrK8sNodeKubeletVersion, v.kubelet)
	putNonEmpty(a, records.AttrK8sNodeContainerRuntimeVersion, v.runtime)
	putNonEmpty(a, records.AttrK8sNodeOSImage, v.osImage)
	putNonEmpty(a, records.AttrHostArch, v.arch)
}

func putWorkload(a pcommon.Map, w workloadRef) {
	if w.kind == "" {
		return
	}
	a.PutStr(records.AttrK8sWorkloadKind, w.kind)
	a.PutStr(records.AttrK8sWorkloadName, w.name)
	putNonEmpty(a, records.AttrK8sWorkloadUID, w.uid)
}

func (s *recordSink) workload(v workloadView, change string) {
	a := s.newRecord(records.EventK8sWorkload, change,
		strings.ToLower(v.ref.kind)+" "+v.namespace+"/"+v.ref.name+" "+change)
	a.PutStr(records.AttrK8sNamespaceName, v.namespace)
	putWorkload(a, v.ref)
	images := a.PutEmptySlice(records.AttrK8sWorkloadImages)
	for img := range strings.SplitSeq(v.images, "\n") {
		if img != "" {
			images.AppendEmpty().SetStr(img)
		}
	}
}

func putPod(a pcommon.Map, v *podView) {
	a.PutStr(records.AttrK8sNamespaceName, v.namespace)
	a.PutStr(records.AttrK8sPodName, v.name)
	a.PutStr(records.AttrK8sPodUID, v.uid)
	putNonEmpty(a, records.AttrK8sNodeName, v.node)
	putWorkload(a, v.owner)
}

func (s *recordSink) pod(v podView, change string) {
	a := s.newRecord(records.EventK8sPod, change, "pod "+v.namespace+"/"+v.name+" "+change)
	putPod(a, &v)
	putNonEmpty(a, records.AttrK8sPodStatusPhase, v.phase)
}

func (s *recordSink) container(p podView, c containerView, change string) {
	a := s.newRecord(records.EventK8sContainer, change,
		"container "+p.namespace+"/"+p.name+"/"+c.name+" "+change)
	putPod(a, &p)
	a.PutStr(records.AttrK8sContainerName, c.name)
	a.PutStr(records.AttrK8sContainerKind, c.kind)
	a.PutStr(records.AttrContainerImageName, c.image)
	putNonEmpty(a, records.AttrImagePullPolicy, c.pullPolicy)
	if c.containerID != "" {
		runtime, id, err := parseContainerID(c.containerID)
		if err != nil {
			s.logger.invalidContainerID(p.namespace+"/"+p.name+"/"+c.name, c.containerID, err)
		} else {
			a.PutStr(records.AttrContainerID, id)
			putNonEmpty(a, records.AttrContainerRuntime, runtime)
		}
	}
	putNonEmpty(a, records.AttrContainerImageID, c.imageID)
	digest, missing, err := runningDigest(c.imageID)
	if err != nil {
		s.logger.invalidImageID(p.namespace+"/"+p.name+"/"+c.name, c.imageID, err)
	}
	if digest != "" {
		a.PutStr(records.AttrImageRunningDigest, digest)
	} else {
		a.PutStr(records.AttrImageRunningDigestMissing, missing)
	}
	putNonEmpty(a, records.AttrK8sContainerStatusState, c.state)
	putNonEmpty(a, records.AttrK8sContainerStatusReason, c.reason)
	if c.hasStatus {
		a.PutInt(records.AttrK8sContainerRestartCount, int64(c.restarts))
	}
	putNonEmpty(a, records.AttrK8sContainerStartTime, c.startTime)
}
