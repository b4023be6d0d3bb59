package correlate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// maxPropertiesBody bounds an item's properties answer.
const maxPropertiesBody = 1 << 20

// ReadProperties turns on reading, with each listing of an Artifactory registry, the item properties of its
// in-use tags (GET /api/storage/<repo key>/<image>/<tag>?properties), for the placement rules that select by a
// label or take their places from one (docs/placement.md). The service turns it on when its placement policy
// reads labels, or its signature and provenance policy is loaded, and again when a reloaded placement policy
// changes whether it reads labels; it may be called while Run runs, and takes effect from the next listing.
func (c *Correlator) ReadProperties(on bool) { c.readProps.Store(on) }

// readProperties reads and stores the properties of every in-use tag of an Artifactory registry. A failed item
// is logged and counted; the others are kept.
func (c *Correlator) readProperties(ctx context.Context, j *job) {
	name := j.reg.Name
	inUse, err := c.st.InUseArtifacts(ctx, name)
	if err != nil {
		c.m.errors.WithLabelValues(name, "properties").Inc()
		c.log.Error("properties: in-use artifacts not read", "registry", name, "error", err)
		return
	}
	items := make([]store.ItemProperties, 0, len(inUse))
	for _, a := range inUse {
		if ctx.Err() != nil {
			return
		}
		props, err := j.cl.properties(ctx, a.Repository+"/"+a.Tag)
		if err != nil {
			c.m.errors.WithLabelValues(name, "properties").Inc()
			c.log.Warn("properties: not read; placement rules that need them keep the last read", "registry", name,
				"item", a.Repository+"/"+a.Tag, "error", err)
			continue
		}
		items = append(items, store.ItemProperties{Repository: a.Repository, Tag: a.Tag, Properties: props})
	}
	if err := c.st.PutProperties(ctx, name, items); err != nil {
		c.m.errors.WithLabelValues(name, "store").Inc()
		c.log.Error("properties: not stored", "registry", name, "error", err)
		return
	}
	c.log.Info("Artifactory properties read", "registry", name, "items", len(items))
}

// properties gets one item's properties through the get-item-properties API. An item without properties
// (Artifactory answers 404 then, as for a missing item) has none.
func (cl *client) properties(ctx context.Context, item string) (map[string][]string, error) {
	u := *cl.reg.BaseURL
	segs := strings.Split(item, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	u.Path = cl.reg.BaseURL.Path + "/api/storage/" + item
	u.RawPath = cl.reg.BaseURL.EscapedPath() + "/api/storage/" + strings.Join(segs, "/")
	u.RawQuery = "properties"
	rt, err := cl.transport(ctx, "")
	if err != nil {
		return nil, err
	}
	resp, err := cl.do(ctx, rt, http.MethodGet, &u, "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return map[string][]string{}, nil
	case resp.StatusCode != http.StatusOK:
		return nil, httpError(resp.Request, resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPropertiesBody+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redactURL(&u), err)
	}
	if len(body) > maxPropertiesBody {
		return nil, fmt.Errorf("%s: properties larger than %d bytes", redactURL(&u), maxPropertiesBody)
	}
	return ParseProperties(body)
}

// ParseProperties reads a get-item-properties answer: {"properties": {"key": ["value", …]}, "uri": …}.
func ParseProperties(body []byte) (map[string][]string, error) {
	var v struct {
		Properties map[string][]string `json:"properties"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("not an item properties answer: %w", err)
	}
	if v.Properties == nil {
		v.Properties = map[string][]string{}
	}
	return v.Properties, nil
}
