package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// HostContainerTTL is how long a host container (runtrust.host.container: no pod, pod_uid ”) stays live after
// its sensor last described it. The sensor describes each live one every 10 minutes
// (runtimesensorreceiver.HostContainerRefresh) and says when it goes; a container removed while its collector
// was down is never said gone, so it is forgotten here instead, after three missed descriptions.
const HostContainerTTL = 30 * time.Minute

// ExpireHostContainers marks deleted the host containers no sensor has described within ttl, and recomputes
// the images they ran, in one transaction. It returns how many it expired.
func (s *Store) ExpireHostContainers(ctx context.Context, ttl time.Duration) (int64, error) {
	now := s.now()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, classify(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, `
		UPDATE containers SET deleted_at = $1
		WHERE pod_uid = '' AND deleted_at IS NULL AND last_seen < $2
		RETURNING cluster_id, running_digest`, now, now.Add(-ttl))
	if err != nil {
		return 0, classify(fmt.Errorf("expire host containers: %w", err))
	}
	byCluster := map[int64][]string{}
	var n int64
	var cluster int64
	var digest string
	_, err = pgx.ForEachRow(rows, []any{&cluster, &digest}, func() error {
		n++
		if digest != "" {
			byCluster[cluster] = append(byCluster[cluster], digest)
		}
		return nil
	})
	if err != nil {
		return 0, classify(fmt.Errorf("expire host containers: %w", err))
	}
	for cluster, digests := range byCluster {
		digests = dedupe(digests)
		if err := recomputeImages(ctx, tx, cluster, digests); err != nil {
			return 0, classify(err)
		}
		if err := recordVerdictChanges(ctx, tx, cluster, digests); err != nil {
			return 0, classify(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, classify(err)
	}
	return n, nil
}
