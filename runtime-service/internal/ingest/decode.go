package ingest

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/internal/wire"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// Bounds on what one record may carry. A string longer than maxString is an error, not truncated: a path or an
// image reference cut short would be a wrong fact.
const (
	maxString      = 4096
	maxListEntries = 256
)

// Decoded is a request's records, sorted into a batch, and what was wrong with the rest.
type Decoded struct {
	Batch    store.Batch
	Rejected int
	Errors   []wire.Rejection // the first wire.MaxRejectionsReported refused records
	Kinds    map[string]int
}

// Rejections are the refused records as the answer reports them (wire.RejectedStatus).
func (d *Decoded) Rejections() wire.Rejections {
	return wire.Rejections{Total: d.Rejected, Records: d.Errors}
}

// Message summarises the rejected records for an OTLP partial success or an InvalidArgument status.
func (d *Decoded) Message() string { return d.Rejections().Message() }

// reject refuses record n for reason, which does not repeat the record's number.
func (d *Decoded) reject(n int, reason string) {
	d.Rejected++
	if len(d.Errors) < wire.MaxRejectionsReported {
		d.Errors = append(d.Errors, wire.Rejection{Record: n, Reason: reason})
	}
}

// foreignCluster is the reason every record of resource i is refused when the resource names cluster uid
// rather than own, the token's. Both decoders word it so.
func foreignCluster(i int, uid, own string) string {
	return fmt.Sprintf("in resource %d: %s %q is not the cluster this token belongs to (%q)", i, records.AttrK8sClusterUID, uid, own)
}

// Decode turns OTLP logs from cluster c into a store batch. Each record is checked against the record contract
// (docs/records.md): its event name, the attributes its kind needs, their types, and that every string is
// valid UTF-8 without NUL (Postgres text holds neither). A record that fails is rejected alone; the rest are kept.
// A resource that names another cluster (k8s.cluster.uid) is rejected whole: a token writes its own cluster only.
// now stands in for a record without a timestamp.
func Decode(logs plog.Logs, c store.Cluster, now time.Time) *Decoded {
	d := &Decoded{Kinds: map[string]int{}}
	n := 0
	rls := logs.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		if v, ok := res.Get(records.AttrK8sClusterUID); ok && v.AsString() != c.UID {
			// DecodeRequest's wire decoder gives the same message; it hands a non-string uid to this decoder.
			count := 0
			sls := rl.ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				count += sls.At(j).LogRecords().Len()
			}
			reason := foreignCluster(i, v.AsString(), c.UID)
			for k := 0; k < count; k++ {
				d.reject(n+k, reason)
			}
			n += count
			continue
		}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				r := &reader{rec: pdataAttrs(lr.Attributes()), res: pdataAttrs(res)}
				d.record(n, lr.EventName(), recordTime(lr, now), r)
				n++
			}
		}
	}
	return d
}

// record adds record n, or rejects it naming its number, event name and what is wrong. Both decoders (this one
// and the wire decoder in wire.go) go through here, so they accept, reject and word errors alike.
func (d *Decoded) record(n int, event string, t time.Time, r *reader) {
	if err := d.add(event, t, r); err != "" {
		d.reject(n, fmt.Sprintf("(%s): %s", printable(event), err))
	} else {
		d.Kinds[event]++
	}
}

// printable quotes a value for an error message without letting it run on or carry control characters.
func printable(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return fmt.Sprintf("%q", strings.ToValidUTF8(s, "\uFFFD"))
}

func recordTime(lr plog.LogRecord, now time.Time) time.Time {
	if ts := lr.Timestamp(); ts != 0 {
		return ts.AsTime().UTC()
	}
	if ts := lr.ObservedTimestamp(); ts != 0 {
		return ts.AsTime().UTC()
	}
	return now.UTC()
}

// adders holds each record kind's reader, keyed by the log record's EventName (docs/records.md).
var adders = map[string]func(*Decoded, time.Time, *reader){
	records.EventK8sNode:       (*Decoded).addNode,
	records.EventK8sWorkload:   (*Decoded).addWorkload,
	records.EventK8sPod:        (*Decoded).addPod,
	records.EventK8sContainer:  (*Decoded).addContainer,
	records.EventProcessExec:   (*Decoded).addExec,
	records.EventFileOpen:      (*Decoded).addFileOpen,
	records.EventSensorHealth:  (*Decoded).addSensorHealth,
	records.EventHostContainer: (*Decoded).addHostContainer,
}

// add appends one record to the batch, or says what is wrong with it. A record is appended only when its
// kind's reader found nothing wrong.
func (d *Decoded) add(event string, t time.Time, r *reader) string {
	addKind, ok := adders[event]
	switch {
	case event == "":
		return "no event name: every runtrust record says what it is in the log record's EventName"
	case !ok:
		return fmt.Sprintf("unknown event name %s (the runtime service stores the records in docs/records.md)", printable(event))
	}
	addKind(d, t, r)
	return r.err
}

func (d *Decoded) addNode(t time.Time, r *reader) {
	n := store.Node{UID: r.str(records.AttrK8sNodeUID, true), Name: r.str(records.AttrK8sNodeName, true), Time: t}
	n.Deleted = r.deleted()
	if r.err == "" {
		d.Batch.Nodes = append(d.Batch.Nodes, n)
	}
}

func (d *Decoded) addWorkload(t time.Time, r *reader) {
	w := store.Workload{
		UID:       r.str(records.AttrK8sWorkloadUID, true),
		Kind:      r.str(records.AttrK8sWorkloadKind, true),
		Name:      r.str(records.AttrK8sWorkloadName, true),
		Namespace: r.str(records.AttrK8sNamespaceName, false),
		Time:      t,
	}
	w.Deleted = r.deleted()
	if r.err == "" {
		d.Batch.Workloads = append(d.Batch.Workloads, w)
	}
}

// placement is where a pod or container runs and what owns it: optional on both records.
type placement struct{ namespace, podName, node, workloadUID, workloadKind, workloadName string }

// placement reads it in the order the records list it (the first error is the one reported); a container's
// record also names its pod.
func (r *reader) placement(withPodName bool) placement {
	var p placement
	p.namespace = r.str(records.AttrK8sNamespaceName, false)
	if withPodName {
		p.podName = r.str(records.AttrK8sPodName, false)
	}
	p.node = r.str(records.AttrK8sNodeName, false)
	p.workloadUID = r.str(records.AttrK8sWorkloadUID, false)
	p.workloadKind = r.str(records.AttrK8sWorkloadKind, false)
	p.workloadName = r.str(records.AttrK8sWorkloadName, false)
	return p
}

func (d *Decoded) addPod(t time.Time, r *reader) {
	uid, name := r.str(records.AttrK8sPodUID, true), r.str(records.AttrK8sPodName, true)
	at := r.placement(false)
	p := store.Pod{UID: uid, Name: name, Namespace: at.namespace, NodeName: at.node,
		WorkloadUID: at.workloadUID, WorkloadKind: at.workloadKind, WorkloadName: at.workloadName, Time: t}
	p.Deleted = r.deleted()
	if r.err == "" {
		d.Batch.Pods = append(d.Batch.Pods, p)
	}
}

func (d *Decoded) addContainer(t time.Time, r *reader) {
	podUID, name, id := r.str(records.AttrK8sPodUID, true), r.str(records.AttrK8sContainerName, true), r.str(records.AttrContainerID, false)
	at := r.placement(true)
	k := store.Container{
		PodUID: podUID, Name: name, ContainerID: id,
		Namespace: at.namespace, PodName: at.podName, NodeName: at.node,
		WorkloadUID: at.workloadUID, WorkloadKind: at.workloadKind, WorkloadName: at.workloadName,
	}
	r.image(&k)
	k.PullPolicy = r.str(records.AttrImagePullPolicy, false)
	r.findings(&k)
	k.Time = t
	k.Deleted = r.deleted()
	if r.err == "" {
		d.Batch.Containers = append(d.Batch.Containers, k)
	}
}

// addHostContainer reads a container in no pod (docs/records.md, runtrust.host.container). It is stored as a
// container with no pod uid, named by its id (64 hex digits, unique to the runtime that made it), on the node
// or host its sensor runs on.
func (d *Decoded) addHostContainer(t time.Time, r *reader) {
	id := r.str(records.AttrContainerID, true)
	node := r.str(records.AttrK8sNodeName, false)
	if node == "" {
		node = r.str(records.AttrHostName, false)
	}
	k := store.Container{Name: id, ContainerID: id, NodeName: node}
	r.image(&k)
	r.findings(&k)
	k.Time = t
	k.Deleted = r.deleted()
	if r.err == "" {
		d.Batch.Containers = append(d.Batch.Containers, k)
	}
}

// image reads the image a container record names and the digest it runs.
func (r *reader) image(k *store.Container) {
	k.ImageName = r.str(records.AttrContainerImageName, false)
	k.ImageRef = r.str(records.AttrImageRef, false)
	k.RegistryHost = r.str(records.AttrRegistryHost, false)
	k.RegistryTrusted = r.boolean(records.AttrRegistryTrusted)
	k.TagMutable = r.boolean(records.AttrImageTagMutable)
	k.RunningDigest = r.digest(records.AttrImageRunningDigest)
}

// findings reads what the processors found about a container's image.
func (r *reader) findings(k *store.Container) {
	k.Integrity = r.oneOf(records.AttrImageIntegrity, integrityValues)
	k.ExpectedDigest = r.digest(records.AttrImageExpectedDigest)
	k.Severity = r.oneOf(records.AttrRiskSeverity, severityValues)
	k.Reasons = r.strs(records.AttrRiskReasons)
}

// origin is the container, image and process a sensor event comes from, read first on both event records.
type origin struct {
	containerID, imageDigest string
	pid                      int64
}

func (r *reader) origin() origin {
	return origin{containerID: r.str(records.AttrContainerID, false), imageDigest: r.digest(records.AttrImageRunningDigest),
		pid: r.integer(records.AttrProcessPID)}
}

func (d *Decoded) addExec(t time.Time, r *reader) {
	from := r.origin()
	e := store.ExecEvent{
		Time: t, ContainerID: from.containerID, ImageDigest: from.imageDigest, PID: from.pid,
		ParentPID:        r.integer(records.AttrProcessParentPID),
		UserID:           r.integer(records.AttrProcessUserID),
		ExecutablePath:   r.str(records.AttrProcessExecutablePath, true),
		SHA256:           r.sha256(records.AttrProcessExecutableSHA256),
		CommandArgs:      r.strs(records.AttrProcessCommandArgs),
		WorkingDirectory: r.str(records.AttrProcessWorkingDirectory, false),
	}
	if r.err == "" {
		d.Batch.Execs = append(d.Batch.Execs, e)
	}
}

func (d *Decoded) addFileOpen(t time.Time, r *reader) {
	from := r.origin()
	f := store.FileOpenEvent{
		Time: t, ContainerID: from.containerID, ImageDigest: from.imageDigest, PID: from.pid,
		ExecutablePath: r.str(records.AttrProcessExecutablePath, false),
		FilePath:       r.str(records.AttrFilePath, true),
		Flags:          r.integer(records.AttrFileFlags),
	}
	if r.err == "" {
		d.Batch.FileOpens = append(d.Batch.FileOpens, f)
	}
}

func (d *Decoded) addSensorHealth(t time.Time, r *reader) {
	h := store.SensorHealth{
		NodeName:      r.str(records.AttrK8sNodeName, false),
		EventsSeen:    r.integer(records.AttrSensorEventsSeen),
		EventsDropped: r.integer(records.AttrSensorEventsDropped),
		Kernel:        r.str(records.AttrSensorKernel, false),
		ProgramStatus: r.str(records.AttrSensorProgramStatus, false),
		OpenHook:      r.str(records.AttrSensorOpenHook, false),
		HooksRefused:  r.str(records.AttrSensorHooksRefused, false),
		Time:          t,
	}
	if h.NodeName == "" {
		h.NodeName = r.str(records.AttrHostName, false)
	}
	if h.NodeName == "" && r.err == "" {
		r.fail(fmt.Sprintf("%s (or %s) is missing", records.AttrK8sNodeName, records.AttrHostName))
	}
	if r.err == "" {
		d.Batch.SensorHealth = append(d.Batch.SensorHealth, h)
	}
}

var (
	severityValues  = records.Severities
	integrityValues = records.Verdicts
	changeValues    = []string{records.ChangeAdded, records.ChangeUpdated, records.ChangeDeleted, records.ChangeSnapshot}
)

// isDigest says whether s is "sha256:" and 64 lowercase hex digits, or "sha512:" and 128. Written out rather
// than as a regular expression: the regexp was a fifth of the decoder's time per event record.
func isDigest(s string) bool {
	switch {
	case strings.HasPrefix(s, "sha256:"):
		return len(s) == 7+64 && isLowerHex(s[7:])
	case strings.HasPrefix(s, "sha512:"):
		return len(s) == 7+128 && isLowerHex(s[7:])
	}
	return false
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// attrValue is one attribute value as the record checks see it: its type and, for the types they read, its
// contents. Both decoders produce it: from pdata (pdataAttrs) and from the wire (wireAttrs).
type attrValue struct {
	typ   pcommon.ValueType
	str   string
	num   int64
	flag  bool
	count int         // a Slice's number of entries
	elems []attrValue // a Slice's entries, filled only when count <= maxListEntries
}

// attrSource looks an attribute up by key; the first entry with the key wins, as in pcommon.Map.Get.
type attrSource interface {
	lookup(key string) (attrValue, bool)
}

// pdataAttrs is a pcommon.Map as an attrSource.
type pdataAttrs pcommon.Map

func (m pdataAttrs) lookup(key string) (attrValue, bool) {
	v, ok := pcommon.Map(m).Get(key)
	if !ok {
		return attrValue{}, false
	}
	return pdataValue(v), true
}

func pdataValue(v pcommon.Value) attrValue {
	a := attrValue{typ: v.Type()}
	switch a.typ {
	case pcommon.ValueTypeStr:
		a.str = v.Str()
	case pcommon.ValueTypeInt:
		a.num = v.Int()
	case pcommon.ValueTypeBool:
		a.flag = v.Bool()
	case pcommon.ValueTypeSlice:
		sl := v.Slice()
		a.count = sl.Len()
		if a.count <= maxListEntries {
			a.elems = make([]attrValue, a.count)
			for i := range a.elems {
				a.elems[i] = pdataValue(sl.At(i))
			}
		}
	}
	return a
}

// reader reads typed attributes of one record, the record's own first and then its resource's, and keeps the
// first error.
type reader struct {
	rec, res attrSource
	err      string
}

func (r *reader) fail(msg string) {
	if r.err == "" {
		r.err = msg
	}
}

func (r *reader) get(key string) (attrValue, bool) {
	if v, ok := r.rec.lookup(key); ok {
		return v, true
	}
	return r.res.lookup(key)
}

func checkString(key, s string) string {
	switch {
	case len(s) > maxString:
		return fmt.Sprintf("%s is %d bytes long; at most %d", key, len(s), maxString)
	case !utf8.ValidString(s):
		return fmt.Sprintf("%s is not valid UTF-8", key)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Sprintf("%s contains a NUL byte", key)
	}
	return ""
}

func (r *reader) str(key string, required bool) string {
	v, ok := r.get(key)
	if !ok || (v.typ == pcommon.ValueTypeStr && v.str == "") {
		if required {
			r.fail(key + " is missing")
		}
		return ""
	}
	if v.typ != pcommon.ValueTypeStr {
		r.fail(fmt.Sprintf("%s is a %s; want a string", key, v.typ))
		return ""
	}
	if msg := checkString(key, v.str); msg != "" {
		r.fail(msg)
		return ""
	}
	return v.str
}

func (r *reader) strs(key string) []string {
	v, ok := r.get(key)
	if !ok {
		return nil
	}
	if v.typ != pcommon.ValueTypeSlice {
		r.fail(fmt.Sprintf("%s is a %s; want a list of strings", key, v.typ))
		return nil
	}
	if v.count > maxListEntries {
		r.fail(fmt.Sprintf("%s has %d entries; at most %d", key, v.count, maxListEntries))
		return nil
	}
	out := make([]string, 0, v.count)
	for i, e := range v.elems {
		if e.typ != pcommon.ValueTypeStr {
			r.fail(fmt.Sprintf("%s[%d] is a %s; want a string", key, i, e.typ))
			return nil
		}
		if msg := checkString(key, e.str); msg != "" {
			r.fail(fmt.Sprintf("%s[%d]%s", key, i, msg[len(key):])) // the entry's name, without formatting it for every good entry
			return nil
		}
		out = append(out, e.str)
	}
	return out
}

func (r *reader) integer(key string) int64 {
	v, ok := r.get(key)
	if !ok {
		return 0
	}
	if v.typ != pcommon.ValueTypeInt {
		r.fail(fmt.Sprintf("%s is a %s; want an int", key, v.typ))
		return 0
	}
	return v.num
}

func (r *reader) boolean(key string) *bool {
	v, ok := r.get(key)
	if !ok {
		return nil
	}
	if v.typ != pcommon.ValueTypeBool {
		r.fail(fmt.Sprintf("%s is a %s; want a bool", key, v.typ))
		return nil
	}
	b := v.flag
	return &b
}

func (r *reader) oneOf(key string, values []string) string {
	s := r.str(key, false)
	if s == "" {
		return ""
	}
	for _, v := range values {
		if s == v {
			return s
		}
	}
	r.fail(fmt.Sprintf("%s is %s; want one of %s", key, printable(s), strings.Join(values, ", ")))
	return ""
}

// digest reads an image digest. Kubernetes reports imageID as "docker-pullable://repo@sha256:…" or
// "repo@sha256:…" depending on the runtime; the digest is the part after the last "@".
func (r *reader) digest(key string) string {
	s := r.str(key, false)
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if !isDigest(s) {
		r.fail(fmt.Sprintf("%s is %s; want a digest (sha256:<64 hex>)", key, printable(s)))
		return ""
	}
	return s
}

func (r *reader) sha256(key string) string {
	s := strings.ToLower(r.str(key, false))
	if s != "" && (len(s) != 64 || !isLowerHex(s)) {
		r.fail(fmt.Sprintf("%s is %s; want 64 hex digits", key, printable(s)))
		return ""
	}
	return s
}

// deleted reads runtrust.k8s.change: absent counts as a state report, "deleted" marks the object gone.
func (r *reader) deleted() bool {
	return r.oneOf(records.AttrK8sChange, changeValues) == records.ChangeDeleted
}
