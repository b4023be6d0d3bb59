-- Per-collector credentials (Impact mode without a manual enrol step). A cluster runs several collectors (the
-- controller Deployment, one sensor per node), each with its own token and heartbeat: one collector enrolling
-- again replaces only its own token, and the cluster's mode, node count and collector version are derived from
-- its collectors' heartbeats (store/query.go) instead of flipping between what each one last said.
--
-- token_hash is the SHA-256 of the collector's token (see clusters in 001): the ingest looks a token up here,
-- one probe of the unique index, on every call.
CREATE TABLE collectors (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_id   bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    collector_id text NOT NULL,
    mode         text NOT NULL DEFAULT '',
    token_hash   bytea NOT NULL UNIQUE,
    version      text NOT NULL DEFAULT '',
    node_count   integer NOT NULL DEFAULT 0,
    heartbeat_at timestamptz,
    enrolled_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cluster_id, collector_id)
);

-- Clusters enrolled before keep working: their one token, and what their collector last said, become the
-- collector "legacy" (the id an enrolment without a collector id gets, so an old exporter that enrols again
-- replaces exactly this token, as it did before).
INSERT INTO collectors (cluster_id, collector_id, mode, token_hash, version, node_count, heartbeat_at, enrolled_at)
SELECT id, 'legacy', mode, token_hash, collector_version, node_count, heartbeat_at, enrolled_at
FROM clusters WHERE token_hash IS NOT NULL;

-- The columns that moved: nothing may read a cluster-wide token or heartbeat any more.
ALTER TABLE clusters
    DROP COLUMN token_hash,
    DROP COLUMN heartbeat_at,
    DROP COLUMN collector_version,
    DROP COLUMN mode,
    DROP COLUMN node_count;
