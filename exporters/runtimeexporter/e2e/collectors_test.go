package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/runtrust/runtrust/exporters/runtimeexporter"
	"github.com/runtrust/runtrust/internal/pgtest"
	"github.com/runtrust/runtrust/testbed"
)

// TestControllerAndSensorsEnrolWithOneJoinKey is Impact mode without a manual enrol step: a controller and two
// sensors of one cluster, each an exporter with its own storage, enrol with the one join key and all deliver;
// a sensor restarted with its storage keeps its token, one that lost its storage enrols again and replaces only
// its own token, and the others keep delivering.
func TestControllerAndSensorsEnrolWithOneJoinKey(t *testing.T) {
	dsn := pgtest.DB(t)
	svc := startService(t, dsn)
	ctx := context.Background()
	cfgOf := func(id, mode string) *runtimeexporter.Config {
		cfg := runtimeConfig(svc.addr)
		cfg.CollectorID, cfg.Mode = id, mode
		return cfg
	}
	ids := []string{"controller", "node-1", "node-2"}
	cfgs := map[string]*runtimeexporter.Config{
		"controller": cfgOf("controller", runtimeexporter.ModeIntegrity),
		"node-1":     cfgOf("node-1", runtimeexporter.ModeImpact),
		"node-2":     cfgOf("node-2", runtimeexporter.ModeImpact),
	}
	dirs := map[string]string{}
	cols := map[string]*collector{}
	for _, id := range ids {
		dirs[id] = t.TempDir()
		cols[id] = startCollector(t, runtimeexporter.NewFactory(), cfgs[id], dirs[id])
	}
	defer func() {
		for _, c := range cols {
			c.stop()
		}
	}()
	send := func(round int) {
		t.Helper()
		for i, id := range ids {
			if err := cols[id].exp.ConsumeLogs(ctx, testbed.ExecRecords(int64((round*len(ids)+i)*1000), 1000)); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		}
	}
	send(0)
	waitForDistinct(t, dsn, 3000, time.Minute)
	for _, id := range ids {
		if n := len(cols[id].logs.FilterMessage("cluster enrolled").All()); n != 1 {
			t.Fatalf("%s enrolled %d times; want once", id, n)
		}
	}
	hashes := collectorTokens(t, dsn)
	if len(hashes) != 3 {
		t.Fatalf("collectors %v; want controller, node-1, node-2 of one cluster", hashes)
	}

	// node-1 restarts with its storage: the stored token, no enrolment.
	cols["node-1"].stop()
	cols["node-1"] = startCollector(t, runtimeexporter.NewFactory(), cfgs["node-1"], dirs["node-1"])
	if len(cols["node-1"].logs.FilterMessage("using the stored cluster token").All()) != 1 {
		t.Fatalf("the restarted sensor did not use its stored token: %v", cols["node-1"].logs.All())
	}
	// node-2 comes back on a new disk: it enrols again with the same key, replacing only its own token.
	cols["node-2"].stop()
	cols["node-2"] = startCollector(t, runtimeexporter.NewFactory(), cfgs["node-2"], t.TempDir())
	send(1)
	waitForDistinct(t, dsn, 6000, time.Minute)
	if n := len(cols["node-2"].logs.FilterMessage("cluster enrolled").All()); n != 1 {
		t.Fatalf("node-2 on a new disk enrolled %d times; want once", n)
	}
	after := collectorTokens(t, dsn)
	if len(after) != 3 || string(after["controller"]) != string(hashes["controller"]) || string(after["node-1"]) != string(hashes["node-1"]) ||
		string(after["node-2"]) == string(hashes["node-2"]) {
		t.Fatalf("tokens after node-2 enrolled again: %x; before %x; want only node-2's replaced", after, hashes)
	}

	// Each heartbeats under its own token: the cluster's modes and the controller's version are on their rows.
	deadline := time.Now().Add(30 * time.Second)
	for {
		modes := collectorModes(t, dsn)
		if modes["controller"] == "integrity" && modes["node-1"] == "impact" && modes["node-2"] == "impact" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector modes after heartbeats: %v", modes)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// collectorTokens are the token hashes by collector id, of the one cluster there must be.
func collectorTokens(t *testing.T, dsn string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	testbed.QueryRows(t, dsn, `SELECT k.collector_id, k.token_hash FROM collectors k JOIN clusters c ON c.id = k.cluster_id
		WHERE c.uid = 'e2e-cluster' AND (SELECT count(*) FROM clusters) = 1`, func(r pgx.Rows) error {
		var id string
		var h []byte
		err := r.Scan(&id, &h)
		out[id] = h
		return err
	})
	return out
}

func collectorModes(t *testing.T, dsn string) map[string]string {
	t.Helper()
	out := map[string]string{}
	testbed.QueryRows(t, dsn, `SELECT collector_id, mode FROM collectors WHERE heartbeat_at IS NOT NULL`, func(r pgx.Rows) error {
		var id, mode string
		err := r.Scan(&id, &mode)
		out[id] = mode
		return err
	})
	return out
}

// TestSensorBeyondTheNodeEntitlementIsRefusedAndSaysSo: the runtime service entitles every cluster to one node.
// The first sensor's exporter enrols and delivers; the second's is refused, logs the service's reason as an
// error and keeps its records queued, retrying; the first keeps delivering meanwhile.
func TestSensorBeyondTheNodeEntitlementIsRefusedAndSaysSo(t *testing.T) {
	dsn := pgtest.DB(t)
	svc := startService(t, dsn, "-node-entitlement", "1")
	ctx := context.Background()
	cfgOf := func(id string) *runtimeexporter.Config {
		cfg := runtimeConfig(svc.addr)
		cfg.CollectorID, cfg.Mode = id, runtimeexporter.ModeImpact
		return cfg
	}
	first := startCollector(t, runtimeexporter.NewFactory(), cfgOf("node-1"), t.TempDir())
	defer first.stop()
	if err := first.exp.ConsumeLogs(ctx, testbed.ExecRecords(0, 1000)); err != nil {
		t.Fatal(err)
	}
	waitForDistinct(t, dsn, 1000, time.Minute)

	second := startCollector(t, runtimeexporter.NewFactory(), cfgOf("node-2"), t.TempDir())
	defer second.stop()
	if err := second.exp.ConsumeLogs(ctx, testbed.ExecRecords(1000, 1000)); err != nil {
		t.Fatal(err)
	}
	const reason = `the runtime service refused this collector's enrolment: cluster "e2e" is entitled to 1 node and 1 sensor is enrolled: ` +
		`sensor "node-2" refused (raise the entitlement, or remove a node's sensor`
	deadline := time.Now().Add(30 * time.Second)
	for second.logs.FilterMessageSnippet(reason).Len() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the refused sensor's exporter did not log the reason twice (refused, retried, refused) within 30 s: %v", second.logs.All())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, l := range second.logs.FilterMessageSnippet(reason).All() {
		if l.Level != zap.ErrorLevel {
			t.Fatalf("the refusal is logged at %s; want error", l.Level)
		}
	}
	if n := second.logs.FilterMessage("cluster enrolled").Len(); n != 0 {
		t.Fatalf("the refused sensor enrolled %d times", n)
	}
	// The enrolled sensor is not disturbed.
	if err := first.exp.ConsumeLogs(ctx, testbed.ExecRecords(2000, 1000)); err != nil {
		t.Fatal(err)
	}
	if got := waitForDistinct(t, dsn, 2000, time.Minute); got.distinct != 2000 {
		t.Fatalf("%d distinct events stored; want the enrolled sensor's 2000 and none of the refused one's", got.distinct)
	}
	if n := len(collectorModes(t, dsn)); n != 1 {
		t.Fatalf("%d collectors heartbeat; want the one enrolled", n)
	}
}
