-- Placement policy (issue #18, item 3; docs/placement.md).
--
-- artifact_labels: the metadata of a running digest the placement rules select by, read from its registry by
-- the metadata worker (runtime-service/internal/metadata): the manifest's (or index's) annotations and the image
-- config's labels, merged (annotations win). Content addressed by digest never changes, so a row once read is
-- kept; a failure is kept with its error and tried again at next_attempt_at.
CREATE TABLE artifact_labels (
    digest          text PRIMARY KEY,
    state           text NOT NULL CHECK (state IN ('read', 'failed')),
    labels          jsonb NOT NULL DEFAULT '{}',
    source          text NOT NULL DEFAULT '',
    error           text NOT NULL DEFAULT '',
    attempts        integer NOT NULL DEFAULT 0,
    read_at         timestamptz NOT NULL,
    next_attempt_at timestamptz
);

-- Artifactory item properties of the listed tags of Artifactory registries (<repo key>/<image>/<tag>), read by
-- the correlator with each listing while a placement rule reads labels. Mutable: replaced at every read.
CREATE TABLE artifact_properties (
    registry   text NOT NULL REFERENCES registries (name) ON DELETE CASCADE,
    repository text NOT NULL,
    tag        text NOT NULL,
    properties jsonb NOT NULL,
    read_at    timestamptz NOT NULL,
    PRIMARY KEY (registry, repository, tag)
);

-- The placement decision of every live container a rule selects: allowed, violation (a finding) or pending
-- (the rule needs labels not read yet). No row: no rule selects the container's artifact. Rewritten for a
-- (cluster, digest) in the ingest transaction that changed its containers, and for every digest when the
-- policy is loaded or labels arrive; a container that is gone loses its row.
CREATE TABLE placement_decisions (
    cluster_id    bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    pod_uid       text NOT NULL,
    container     text NOT NULL,
    digest        text NOT NULL,
    namespace     text NOT NULL,
    pod_name      text NOT NULL,
    workload_kind text NOT NULL,
    workload_name text NOT NULL,
    image_ref     text NOT NULL,
    status        text NOT NULL CHECK (status IN ('allowed', 'violation', 'pending')),
    rule          text NOT NULL,
    severity      text NOT NULL,
    severity_rank smallint NOT NULL,
    reason        text NOT NULL,
    since         timestamptz NOT NULL,
    PRIMARY KEY (cluster_id, pod_uid, container)
);
CREATE INDEX placement_decisions_digest ON placement_decisions (digest, cluster_id);
CREATE INDEX placement_violations ON placement_decisions (severity_rank DESC, since DESC) WHERE status = 'violation';
