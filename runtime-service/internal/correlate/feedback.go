package correlate

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Property keys written to Artifactory.
const (
	PropLastSeen = "runtrust.last_seen"
	PropClusters = "runtrust.clusters"
	PropNodes    = "runtrust.nodes"
)

// feedback writes where an Artifactory registry's artifacts run back to it as item properties, on each tag's
// folder (<repo key>/<image>/<tag>, where Artifactory keeps a docker tag's manifest and layers), through the
// set-item-properties API: PUT /api/storage/<repo key>/<path>?properties=k=v;k2=v2&recursive=0. Not recursive:
// the properties describe the tag, and copying them onto every layer file would multiply the writes.
type feedback struct {
	cl *client

	mu      sync.Mutex
	written map[string]string // item path → the properties last written, to skip unchanged ones
}

func newFeedback(cl *client) *feedback { return &feedback{cl: cl, written: map[string]string{}} }

// EscapePropertyValue escapes what Artifactory's properties parameter gives a meaning to (',', '\', '|', '=',
// ';') with a backslash, as its set-item-properties API asks; URL encoding comes on top.
func EscapePropertyValue(v string) string {
	var b strings.Builder
	for _, r := range v {
		switch r {
		case ',', '\\', '|', '=', ';':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// PropertiesParam builds the properties query value: key=value[,value]… joined by ';' (the separator the API
// recommends), every value escaped and percent-encoded, the separators left as they are.
func PropertiesParam(props [][2]string, multi map[string][]string) string {
	var parts []string
	for _, p := range props {
		parts = append(parts, p[0]+"="+url.QueryEscape(EscapePropertyValue(p[1])))
	}
	for _, k := range []string{PropClusters} {
		if vs, ok := multi[k]; ok {
			enc := make([]string, 0, len(vs))
			for _, v := range vs {
				enc = append(enc, url.QueryEscape(EscapePropertyValue(v)))
			}
			parts = append(parts, k+"="+strings.Join(enc, ","))
		}
	}
	return strings.Join(parts, ";")
}

// writeFeedback sets the properties of every in-use tag of the registry. Errors are logged and counted; one
// failed item does not stop the others, and the next refresh writes again what did not change on the server.
func (c *Correlator) writeFeedback(ctx context.Context, j *job) {
	name := j.reg.Name
	inUse, err := c.st.InUseArtifacts(ctx, name)
	if err != nil {
		c.m.errors.WithLabelValues(name, "feedback").Inc()
		c.log.Error("feedback: in-use artifacts not read", "registry", name, "error", err)
		return
	}
	var written, unchanged, failed int
	for _, a := range inUse {
		if ctx.Err() != nil {
			return
		}
		item := a.Repository + "/" + a.Tag
		props := PropertiesParam([][2]string{
			{PropLastSeen, a.LastSeen.UTC().Format(time.RFC3339)},
			{PropNodes, strconv.Itoa(a.Nodes)},
		}, map[string][]string{PropClusters: a.Clusters})
		j.fb.mu.Lock()
		same := j.fb.written[item] == props
		j.fb.mu.Unlock()
		if same {
			unchanged++
			c.m.feedback.WithLabelValues(name, "unchanged").Inc()
			continue
		}
		if err := j.fb.put(ctx, item, props); err != nil {
			failed++
			c.m.feedback.WithLabelValues(name, "error").Inc()
			c.m.errors.WithLabelValues(name, "feedback").Inc()
			c.log.Warn("feedback: properties not written", "registry", name, "item", item, "error", err)
			continue
		}
		written++
		c.m.feedback.WithLabelValues(name, "written").Inc()
		j.fb.mu.Lock()
		j.fb.written[item] = props
		j.fb.mu.Unlock()
	}
	c.log.Info("feedback written to Artifactory", "registry", name, "written", written, "unchanged", unchanged, "failed", failed)
}

// put sends one set-item-properties request, with the registry's auth, limits and retries.
func (f *feedback) put(ctx context.Context, item, props string) error {
	u := *f.cl.reg.BaseURL
	segs := strings.Split(item, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	u.Path = f.cl.reg.BaseURL.Path + "/api/storage/" + strings.Join(segs, "/")
	u.RawPath = f.cl.reg.BaseURL.EscapedPath() + "/api/storage/" + strings.Join(segs, "/")
	u.RawQuery = "properties=" + props + "&recursive=0"
	rt, err := f.cl.transport(ctx, "")
	if err != nil {
		return err
	}
	resp, err := f.cl.do(ctx, rt, http.MethodPut, &u, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return httpError(resp.Request, resp)
	}
	return nil
}
