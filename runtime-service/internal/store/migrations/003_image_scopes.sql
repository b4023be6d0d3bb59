-- The live assessment per (image, cluster, namespace) and per (image, cluster): what /api/v1/images?namespace=…
-- and ?cluster=… rank by, so a scoped list reads a few thousand rollup rows instead of aggregating every live
-- container in the scope (0.2–0.5 s at 100k pods). Ingest rewrites, in its transaction, only the rows of the
-- (digest, cluster) pairs whose containers the batch changed, both from one grouped pass over that cluster's
-- containers of the digest, and then the images row from the digest's cluster rows (store/ingest.go,
-- recomputeImages): a batch never reads another cluster's containers.
CREATE TABLE image_namespaces (
    digest           text NOT NULL,
    cluster_id       bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    namespace        text NOT NULL,
    severity         text NOT NULL,
    severity_rank    smallint NOT NULL,
    verdict          text NOT NULL,
    verdict_rank     smallint NOT NULL,
    reasons          text[] NOT NULL,
    refs             text[] NOT NULL,
    expected_digests text[] NOT NULL,
    workloads        integer NOT NULL,
    pods             integer NOT NULL,
    containers       integer NOT NULL,
    PRIMARY KEY (namespace, cluster_id, digest)
);
CREATE INDEX image_namespaces_digest ON image_namespaces (digest, cluster_id);
-- One namespace of one cluster, ranked: the page straight from the index (store/query.go, listOneScope).
CREATE INDEX image_namespaces_by_risk ON image_namespaces (namespace, cluster_id, severity_rank DESC, workloads DESC, pods DESC, digest);

CREATE TABLE image_clusters (
    digest           text NOT NULL,
    cluster_id       bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    severity         text NOT NULL,
    severity_rank    smallint NOT NULL,
    verdict          text NOT NULL,
    verdict_rank     smallint NOT NULL,
    reasons          text[] NOT NULL,
    refs             text[] NOT NULL,
    expected_digests text[] NOT NULL,
    namespaces       integer NOT NULL,
    workloads        integer NOT NULL,
    pods             integer NOT NULL,
    containers       integer NOT NULL,
    PRIMARY KEY (cluster_id, digest)
);
CREATE INDEX image_clusters_digest ON image_clusters (digest);
CREATE INDEX image_clusters_by_risk ON image_clusters (cluster_id, severity_rank DESC, namespaces DESC, workloads DESC, pods DESC, digest);

-- The rollups are recomputed per (digest, cluster): the live containers' digest index gains the cluster, so that
-- reading one cluster's containers of a digest skips the other clusters' (a query by digest alone still uses it).
DROP INDEX containers_live_digest;
CREATE INDEX containers_live_digest ON containers (running_digest, cluster_id) WHERE deleted_at IS NULL;

-- Existing data: the rollups of every live container.
INSERT INTO image_namespaces
SELECT g.digest, g.cluster_id, g.namespace, g.severity, g.severity_rank, g.verdict, g.verdict_rank,
    coalesce(r.reasons, '{}'), g.refs, g.expected_digests, g.workloads, g.pods, g.containers
FROM (
    SELECT running_digest AS digest, cluster_id, namespace,
        (array_agg(severity ORDER BY severity_rank DESC))[1] AS severity, max(severity_rank) AS severity_rank,
        (array_agg(integrity ORDER BY verdict_rank DESC))[1] AS verdict, max(verdict_rank) AS verdict_rank,
        coalesce(array_agg(DISTINCT CASE WHEN image_ref <> '' THEN image_ref ELSE image_name END)
            FILTER (WHERE image_ref <> '' OR image_name <> ''), '{}') AS refs,
        coalesce(array_agg(DISTINCT expected_digest) FILTER (WHERE expected_digest <> ''), '{}') AS expected_digests,
        count(DISTINCT workload_uid) FILTER (WHERE workload_uid <> '') AS workloads,
        count(DISTINCT pod_uid) AS pods, count(*) AS containers
    FROM containers WHERE deleted_at IS NULL AND running_digest <> ''
    GROUP BY running_digest, cluster_id, namespace) g
LEFT JOIN (
    SELECT running_digest AS digest, cluster_id, namespace, array_agg(DISTINCT x ORDER BY x) AS reasons
    FROM containers, unnest(reasons) x WHERE deleted_at IS NULL AND running_digest <> ''
    GROUP BY running_digest, cluster_id, namespace) r USING (digest, cluster_id, namespace);

INSERT INTO image_clusters
SELECT g.digest, g.cluster_id, g.severity, g.severity_rank, g.verdict, g.verdict_rank,
    coalesce(r.reasons, '{}'), g.refs, g.expected_digests, g.namespaces, g.workloads, g.pods, g.containers
FROM (
    SELECT running_digest AS digest, cluster_id,
        (array_agg(severity ORDER BY severity_rank DESC))[1] AS severity, max(severity_rank) AS severity_rank,
        (array_agg(integrity ORDER BY verdict_rank DESC))[1] AS verdict, max(verdict_rank) AS verdict_rank,
        coalesce(array_agg(DISTINCT CASE WHEN image_ref <> '' THEN image_ref ELSE image_name END)
            FILTER (WHERE image_ref <> '' OR image_name <> ''), '{}') AS refs,
        coalesce(array_agg(DISTINCT expected_digest) FILTER (WHERE expected_digest <> ''), '{}') AS expected_digests,
        count(DISTINCT namespace) AS namespaces,
        count(DISTINCT workload_uid) FILTER (WHERE workload_uid <> '') AS workloads,
        count(DISTINCT pod_uid) AS pods, count(*) AS containers
    FROM containers WHERE deleted_at IS NULL AND running_digest <> ''
    GROUP BY running_digest, cluster_id) g
LEFT JOIN (
    SELECT running_digest AS digest, cluster_id, array_agg(DISTINCT x ORDER BY x) AS reasons
    FROM containers, unnest(reasons) x WHERE deleted_at IS NULL AND running_digest <> ''
    GROUP BY running_digest, cluster_id) r USING (digest, cluster_id);

-- Images seen only through events: an exec or file-open record names a digest that no container record named
-- (yet). Ingest inserts a minimal images row for it (state_seen false) and never overwrites a row; the first
-- container record that names the digest sets state_seen, and from then on the live containers decide whether
-- the image is listed. An events-only image is listed while its events keep coming (store/query.go).
ALTER TABLE images ADD COLUMN state_seen boolean NOT NULL DEFAULT true;

DROP INDEX images_by_risk;
CREATE INDEX images_by_risk ON images (severity_rank DESC, clusters DESC, namespaces DESC, workloads DESC, pods DESC, digest)
    WHERE containers > 0 OR NOT state_seen;
