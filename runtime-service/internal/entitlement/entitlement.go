// Package entitlement is the runtime service's licensed node count per cluster (docs/runtime-service.md,
// "Entitlement"): how many nodes' sensors each cluster may enrol. It is read from the -node-entitlement setting:
// a comma-separated list of a bare count, the default for every cluster, and cluster=count entries that override
// it for the cluster of that name (or uid). 0, or no entry, is unlimited.
package entitlement

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNodes is the largest count an entry may give: the most nodes a heartbeat may report (internal/ingest).
const MaxNodes = 1 << 20

// maxClusterLen bounds a cluster name or uid in an entry: a DNS subdomain fits, as a node name does.
const maxClusterLen = 253

// Nodes is the licensed node count of every cluster.
type Nodes struct {
	// Default is every cluster's count that Clusters does not name; 0 is unlimited.
	Default int
	// Clusters are the counts of the clusters named, by name or uid; 0 is unlimited.
	Clusters map[string]int
}

// For is the count of the cluster with this uid and name: its uid's entry, else its name's, else the default;
// 0 is unlimited. An entry by uid wins, being the more specific: two clusters may share a name.
func (n Nodes) For(uid, name string) int {
	if c, ok := n.Clusters[uid]; ok {
		return c
	}
	if c, ok := n.Clusters[name]; ok {
		return c
	}
	return n.Default
}

// Limited says whether any cluster has a limit.
func (n Nodes) Limited() bool {
	if n.Default > 0 {
		return true
	}
	for _, c := range n.Clusters {
		if c > 0 {
			return true
		}
	}
	return false
}

// String is the setting that Parse reads back to n: the default first (when not 0), then the clusters by name.
func (n Nodes) String() string {
	var parts []string
	if n.Default != 0 {
		parts = append(parts, strconv.Itoa(n.Default))
	}
	names := make([]string, 0, len(n.Clusters))
	for name := range n.Clusters {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		parts = append(parts, name+"="+strconv.Itoa(n.Clusters[name]))
	}
	return strings.Join(parts, ",")
}

// Parse reads the setting: entries separated by commas, each a count (the default; at most one) or
// cluster=count (at most one per cluster); spaces around an entry or either side of "=" are ignored, empty
// entries skipped. A count is a whole number from 0 (unlimited) to MaxNodes. A cluster is its name or uid as
// the collectors enrol it: up to 253 bytes of UTF-8, no control characters or spaces, no "=" or ",". The error
// names the entry at fault.
func Parse(v string) (Nodes, error) {
	var n Nodes
	haveDefault := false
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		name, count, named := strings.Cut(e, "=")
		if !named {
			c, err := parseCount(e)
			if err != nil {
				return Nodes{}, fmt.Errorf("node-entitlement entry %q: %w (a default count, or cluster=count)", e, err)
			}
			if haveDefault {
				return Nodes{}, fmt.Errorf("node-entitlement entry %q: a second default count (the first was %d); name the cluster as cluster=count", e, n.Default)
			}
			n.Default, haveDefault = c, true
			continue
		}
		name, count = strings.TrimSpace(name), strings.TrimSpace(count)
		if err := checkCluster(name); err != nil {
			return Nodes{}, fmt.Errorf("node-entitlement entry %q: %w", e, err)
		}
		c, err := parseCount(count)
		if err != nil {
			return Nodes{}, fmt.Errorf("node-entitlement entry %q: %w", e, err)
		}
		if prev, dup := n.Clusters[name]; dup {
			return Nodes{}, fmt.Errorf("node-entitlement entry %q: cluster %q is given twice (first %d)", e, name, prev)
		}
		if n.Clusters == nil {
			n.Clusters = map[string]int{}
		}
		n.Clusters[name] = c
	}
	return n, nil
}

func parseCount(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("the count is missing")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a whole number of nodes", s)
		}
	}
	c, err := strconv.Atoi(s)
	if err != nil || c > MaxNodes {
		return 0, fmt.Errorf("%s nodes is more than %d", s, MaxNodes)
	}
	return c, nil
}

func checkCluster(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("the cluster name is missing before \"=\"")
	case len(name) > maxClusterLen:
		return fmt.Errorf("the cluster name is %d bytes long; at most %d", len(name), maxClusterLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("the cluster name is not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return fmt.Errorf("the cluster name %q contains a space or control character (%U)", name, r)
		}
	}
	return nil
}
