package api

import (
	"net/http"
	"time"

	"github.com/runtrust/runtrust/runtime-service/internal/policywatch"
)

// Policy file kinds, as /api/v1/policy/files lists them and WithPolicyFile takes them, in that order.
const (
	PolicyPlacement  = "placement"
	PolicyProvenance = "provenance"
	PolicyDrift      = "drift"
)

var policyKinds = []string{PolicyPlacement, PolicyProvenance, PolicyDrift}

// WithPolicyFile gives the handler where the policy file of kind stands (its watcher's Status): the policy
// endpoints show which file and content is in force and why a reload was refused, since an edit of a
// ConfigMap takes effect, or not, while the service runs.
func (h *Handler) WithPolicyFile(kind string, status func() policywatch.Status) *Handler {
	if h.policyFiles == nil {
		h.policyFiles = map[string]func() policywatch.Status{}
	}
	h.policyFiles[kind] = status
	return h
}

// PolicyFile is a policy file and the content of it in force.
type PolicyFile struct {
	Kind string `json:"kind"` // placement, provenance, drift
	Path string `json:"path"`
	// LoadedAt is when the policy in force was loaded; SHA256 is the hash of the content it was loaded from (with,
	// for provenance, the key and trusted root files it names).
	LoadedAt time.Time `json:"loaded_at"`
	SHA256   string    `json:"sha256"`
	// ReloadError is why the file's current content was refused (the policy in force is the one loaded before);
	// null when the policy in force is the file's content.
	ReloadError *ReloadError `json:"reload_error"`
}

// ReloadError is a refused reload: why, and since when.
type ReloadError struct {
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// PolicyFiles is /api/v1/policy/files.
type PolicyFiles struct {
	Items []PolicyFile `json:"items"`
}

// policyFile is the file of kind, nil when the service has none.
func (h *Handler) policyFile(kind string) *PolicyFile {
	status, ok := h.policyFiles[kind]
	if !ok {
		return nil
	}
	st := status()
	f := &PolicyFile{Kind: kind, Path: st.Path, LoadedAt: st.LoadedAt.UTC(), SHA256: st.Hash}
	if st.Error != "" {
		f.ReloadError = &ReloadError{Message: st.Error, At: st.ErrorAt.UTC()}
	}
	return f
}

func (h *Handler) listPolicyFiles(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		h.fail(w, r, paramErr("this endpoint takes no query parameters"))
		return
	}
	out := PolicyFiles{Items: []PolicyFile{}}
	for _, k := range policyKinds {
		if f := h.policyFile(k); f != nil {
			out.Items = append(out.Items, *f)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
