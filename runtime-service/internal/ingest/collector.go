package ingest

import "fmt"

// maxCollectorID is the longest collector id: a Kubernetes node name (a DNS subdomain) fits, and a sensor's id
// is its node name.
const maxCollectorID = 253

// checkCollectorID returns why id is not a collector id, or "". Empty is allowed: the cluster's legacy
// collector (store.LegacyCollector). The id shows up in the API and in logs, so it is printable ASCII without
// spaces, like the node and Deployment names it is made of.
func checkCollectorID(id string) string {
	if len(id) > maxCollectorID {
		return fmt.Sprintf("collector_id is %d bytes long; at most %d (a node name fits)", len(id), maxCollectorID)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return fmt.Sprintf("collector_id must be printable ASCII without spaces (byte %d is 0x%02x); use the node name or \"controller\"", i, id[i])
		}
	}
	return ""
}
