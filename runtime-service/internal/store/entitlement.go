package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The node entitlement (docs/runtime-service.md, "Entitlement"): each cluster may have as many nodes' sensors
// enrolled as Options.Entitlement gives it. It is checked when a sensor enrols with a collector id its cluster
// has not enrolled before, in the enrolment's transaction, under the lock the enrolment takes on the cluster's
// row, so concurrent enrolments of one cluster are counted one after another and never exceed it together.
// Nothing else is refused: a sensor enrolled before keeps its token and enrols again as often as it likes, and
// what any collector sent stays.

// RefusalWindow is how long a refused sensor is reported (SensorsRefused) after its last refused enrolment,
// unless it enrols since.
const RefusalWindow = 24 * time.Hour

// ControllerCollector is the collector id the chart gives the controller: never a node's sensor, whatever mode
// it declares.
const ControllerCollector = "controller"

// SensorEnrolment says whether e enrols a node's sensor, the collectors the entitlement counts: one that
// declares impact mode (the sensor DaemonSet's configuration) under its own collector id (its node name). The
// controller and the legacy collector (a whole cluster's one shared token) are not nodes.
func SensorEnrolment(e Enrolment) bool {
	return e.Mode == "impact" && e.CollectorID != ControllerCollector && e.CollectorID != LegacyCollector && e.CollectorID != ""
}

// countedSensorSQL is true for a collectors row k that counts against its cluster's entitlement: a sensor as the
// UI tells one (impact mode, reporting no nodes, not the controller or the legacy collector; ui/static/app.js,
// collectorRole) that is not stale: its last heartbeat, or its enrolment when that is later, within the stale
// threshold of $1 (now): $2 nanoseconds when above 0, else SensorStaleAfter. A revoked collector's row is gone
// and counts no more.
const countedSensorSQL = `(k.mode = 'impact' AND k.collector_id NOT IN ('controller', 'legacy') AND k.node_count = 0
		AND greatest(k.heartbeat_at, k.enrolled_at) >= $1::timestamptz - CASE
			WHEN $2::bigint > 0 THEN make_interval(secs => $2::bigint / 1e9)
			ELSE make_interval(secs => 300) END)` // ControllerCollector, LegacyCollector; 300 s: SensorStaleAfter

// staleAfter is the threshold a sensor's heartbeat is stale after, for the entitlement.
func (s *Store) staleAfter() time.Duration {
	if s.opts.SensorStaleAfter > 0 {
		return s.opts.SensorStaleAfter
	}
	return SensorStaleAfter
}

// ErrEntitlementExceeded: a new sensor's cluster has as many sensors enrolled as its node entitlement allows.
// The *EntitlementError that wraps it says which.
var ErrEntitlementExceeded = errors.New("node entitlement exceeded")

// EntitlementError is a sensor's enrolment refused by its cluster's node entitlement.
type EntitlementError struct {
	ClusterUID, ClusterName, CollectorID string
	// Entitled is the cluster's node count, Enrolled the sensors that counted against it.
	Entitled, Enrolled int
	// StaleAfter is how long a sensor may go without a heartbeat before it stops counting.
	StaleAfter time.Duration

	clusterID int64
}

func (e *EntitlementError) Error() string {
	verb := "are"
	if e.Enrolled == 1 {
		verb = "is"
	}
	return fmt.Sprintf("cluster %q is entitled to %s and %s %s enrolled: sensor %q refused (raise the entitlement, "+
		"or remove a node's sensor: runtime-service revoke -cluster %s -collector-id <node>; a sensor without a heartbeat for %s stops counting)",
		e.ClusterName, plural(e.Entitled, "node"), plural(e.Enrolled, "sensor"), verb, e.CollectorID, e.ClusterUID, e.StaleAfter)
}

// Is makes errors.Is(err, ErrEntitlementExceeded) true.
func (e *EntitlementError) Is(target error) bool { return target == ErrEntitlementExceeded }

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// recordRefusal notes a refused sensor, after its enrolment's transaction rolled back, for the API's
// sensors_refused; the cluster's refusals older than RefusalWindow are removed with it. A failure here leaves
// the refusal unreported, nothing else.
func (s *Store) recordRefusal(ctx context.Context, e *EntitlementError) error {
	_, err := s.pool.Exec(ctx, `
		WITH pruned AS (
			DELETE FROM sensor_refusals WHERE cluster_id = $1 AND collector_id <> $2 AND last_at < $3::timestamptz - $5::interval)
		INSERT INTO sensor_refusals AS r (cluster_id, collector_id, first_at, last_at, attempts, entitled)
		VALUES ($1, $2, $3, $3, 1, $4)
		ON CONFLICT (cluster_id, collector_id) DO UPDATE SET
			first_at = CASE WHEN r.last_at < excluded.last_at - $5::interval THEN excluded.first_at ELSE r.first_at END,
			attempts = CASE WHEN r.last_at < excluded.last_at - $5::interval THEN 1 ELSE r.attempts + 1 END,
			last_at = excluded.last_at, entitled = excluded.entitled`,
		e.clusterID, e.CollectorID, s.now(), e.Entitled, RefusalWindow)
	return classify(err)
}
