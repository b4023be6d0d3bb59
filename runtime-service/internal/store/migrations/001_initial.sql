-- The runtime service's schema. Applied by tern at start (internal/store/migrate.go); never edit a released
-- migration, add the next one.

-- Clusters that enrolled. A cluster's token is stored as its SHA-256 only: the token is 256 random bits, so a
-- plain hash is enough to make a leaked table useless, and a lookup stays one index probe.
CREATE TABLE clusters (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid               text NOT NULL UNIQUE,
    name              text NOT NULL,
    token_hash        bytea UNIQUE,
    enrolled_at       timestamptz NOT NULL DEFAULT now(),
    heartbeat_at      timestamptz,
    collector_version text NOT NULL DEFAULT '',
    mode              text NOT NULL DEFAULT '',
    node_count        integer NOT NULL DEFAULT 0,
    last_ingest_at    timestamptz
);

-- One-time join keys, hashed. used_at is set by the enrolment that spends the key.
CREATE TABLE join_keys (
    key_hash   bytea PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz,
    used_by    bigint REFERENCES clusters (id) ON DELETE SET NULL
);

-- Batches applied, by the idempotency key the client sent: a replay finds its key here and changes nothing.
-- Written in the batch's own transaction, so a key exists exactly when its data does.
CREATE TABLE ingest_batches (
    cluster_id      bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    records         integer NOT NULL,
    PRIMARY KEY (cluster_id, idempotency_key)
);
CREATE INDEX ingest_batches_received ON ingest_batches (received_at);

-- State records: upserts keyed by the object's uid. last_seen is the time of the newest record applied, and an
-- older record never overwrites a newer one. deleted_at is set by a "deleted" change and cleared by any other.
CREATE TABLE nodes (
    cluster_id bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    uid        text NOT NULL,
    name       text NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    deleted_at timestamptz,
    PRIMARY KEY (cluster_id, uid)
);

CREATE TABLE workloads (
    cluster_id bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    uid        text NOT NULL,
    kind       text NOT NULL,
    name       text NOT NULL,
    namespace  text NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    deleted_at timestamptz,
    PRIMARY KEY (cluster_id, uid)
);

CREATE TABLE pods (
    cluster_id    bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    uid           text NOT NULL,
    name          text NOT NULL,
    namespace     text NOT NULL,
    node_name     text NOT NULL,
    workload_uid  text NOT NULL,
    workload_kind text NOT NULL,
    workload_name text NOT NULL,
    first_seen    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    deleted_at    timestamptz,
    PRIMARY KEY (cluster_id, uid)
);

-- Containers carry their pod's namespace and workload (the record contract puts them on every inventory
-- record), so the blast radius of an image is one scan of the live containers that run it.
CREATE TABLE containers (
    cluster_id       bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    pod_uid          text NOT NULL,
    name             text NOT NULL,
    container_id     text NOT NULL,
    namespace        text NOT NULL,
    pod_name         text NOT NULL,
    node_name        text NOT NULL,
    workload_uid     text NOT NULL,
    workload_kind    text NOT NULL,
    workload_name    text NOT NULL,
    image_name       text NOT NULL,
    image_ref        text NOT NULL,
    registry_host    text NOT NULL,
    registry_trusted boolean,
    tag_mutable      boolean,
    running_digest   text NOT NULL,
    pull_policy      text NOT NULL,
    integrity        text NOT NULL,
    verdict_rank     smallint NOT NULL,
    expected_digest  text NOT NULL,
    severity         text NOT NULL,
    severity_rank    smallint NOT NULL,
    reasons          text[] NOT NULL,
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    deleted_at       timestamptz,
    PRIMARY KEY (cluster_id, pod_uid, name)
);
CREATE INDEX containers_live_digest ON containers (running_digest) WHERE deleted_at IS NULL;
CREATE INDEX containers_container_id ON containers (cluster_id, container_id);

-- Images by digest, with the live assessment: recomputed, in the ingest transaction, for every digest a batch
-- touched, so the ranked list is an index scan however many pods there are.
CREATE TABLE images (
    digest           text PRIMARY KEY,
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    severity         text NOT NULL DEFAULT '',
    severity_rank    smallint NOT NULL DEFAULT 0,
    verdict          text NOT NULL DEFAULT '',
    reasons          text[] NOT NULL DEFAULT '{}',
    refs             text[] NOT NULL DEFAULT '{}',
    expected_digests text[] NOT NULL DEFAULT '{}',
    clusters         integer NOT NULL DEFAULT 0,
    namespaces       integer NOT NULL DEFAULT 0,
    workloads        integer NOT NULL DEFAULT 0,
    pods             integer NOT NULL DEFAULT 0,
    containers       integer NOT NULL DEFAULT 0
);
CREATE INDEX images_by_risk ON images (severity_rank DESC, clusters DESC, namespaces DESC, workloads DESC, pods DESC, digest)
    WHERE containers > 0;

-- Images by reference: the registry artifacts (reference, digest) seen running, and when.
CREATE TABLE image_refs (
    ref           text NOT NULL,
    digest        text NOT NULL,
    registry_host text NOT NULL,
    first_seen    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    PRIMARY KEY (ref, digest)
);
CREATE INDEX image_refs_last_seen ON image_refs (last_seen DESC, ref, digest);

CREATE TABLE sensor_health (
    cluster_id     bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    node_name      text NOT NULL,
    events_seen    bigint NOT NULL,
    events_dropped bigint NOT NULL,
    kernel         text NOT NULL,
    program_status text NOT NULL,
    last_seen      timestamptz NOT NULL,
    PRIMARY KEY (cluster_id, node_name)
);

-- Events, aggregated per image digest: what an image's containers executed and opened. One row per cluster as
-- well, so clusters that run the same image do not queue on each other's row locks at every batch; the API sums
-- the clusters' rows. containers holds up to 32 container ids the event was seen in (enough to find one; bounded
-- so a busy image does not grow a row without end).
CREATE TABLE exec_aggregates (
    image_digest      text NOT NULL,
    executable_path   text NOT NULL,
    executable_sha256 text NOT NULL,
    cluster_id        bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    first_seen        timestamptz NOT NULL,
    last_seen         timestamptz NOT NULL,
    count             bigint NOT NULL,
    containers        text[] NOT NULL,
    PRIMARY KEY (image_digest, executable_path, executable_sha256, cluster_id)
);

CREATE TABLE file_aggregates (
    image_digest text NOT NULL,
    file_path    text NOT NULL,
    cluster_id   bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    count        bigint NOT NULL,
    containers   text[] NOT NULL,
    PRIMARY KEY (image_digest, file_path, cluster_id)
);

-- Raw events, kept for the retention period in daily partitions (exec_events_pYYYYMMDD). Old partitions are
-- dropped whole (store/partitions.go). No indexes: they would cost every insert, and reads go through the
-- aggregates; the partition key prunes a time-bounded scan.
CREATE TABLE exec_events (
    cluster_id        bigint NOT NULL,
    time              timestamptz NOT NULL,
    container_id      text NOT NULL,
    image_digest      text NOT NULL,
    pid               bigint NOT NULL,
    parent_pid        bigint NOT NULL,
    executable_path   text NOT NULL,
    executable_sha256 text NOT NULL,
    command_args      text[] NOT NULL,
    user_id           bigint NOT NULL,
    working_directory text NOT NULL
) PARTITION BY RANGE (time);

CREATE TABLE file_events (
    cluster_id      bigint NOT NULL,
    time            timestamptz NOT NULL,
    container_id    text NOT NULL,
    image_digest    text NOT NULL,
    pid             bigint NOT NULL,
    executable_path text NOT NULL,
    file_path       text NOT NULL,
    flags           bigint NOT NULL
) PARTITION BY RANGE (time);

CREATE INDEX containers_live_workload ON containers (cluster_id, workload_uid) WHERE deleted_at IS NULL;
