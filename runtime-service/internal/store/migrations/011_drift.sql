-- Exact drift (issue #18, item 1; docs/drift.md).
--
-- drift_indexes: for each running digest whose containers executed something, the index of its merged layers
-- (runtime-service/internal/drift: path → SHA-256 of every regular file, whiteouts applied), read once from the
-- registry by the drift checker (runtime-service/internal/driftcheck): an image's layers never change for its
-- digest, so a built index is kept for good. index is drift.Encode's form (gzip); files, truncated, notes (which
-- bound cut the build, when one did) and bytes (of file content hashed) say what it holds. A failed build (the
-- registry could not be read) keeps the error and is tried again at next_try_at, later after each attempt.
CREATE TABLE drift_indexes (
    digest      text PRIMARY KEY,
    state       text NOT NULL CHECK (state IN ('built', 'failed')),
    index       bytea,
    manifest    text NOT NULL DEFAULT '',
    files       integer NOT NULL DEFAULT 0,
    truncated   boolean NOT NULL DEFAULT false,
    notes       text[] NOT NULL DEFAULT '{}',
    bytes       bigint NOT NULL DEFAULT 0,
    error       text NOT NULL DEFAULT '',
    attempts    integer NOT NULL DEFAULT 0,
    built_at    timestamptz NOT NULL,
    next_try_at timestamptz
);
CREATE INDEX drift_indexes_due ON drift_indexes (next_try_at) WHERE state = 'failed';

-- drift_findings: the drift verdict on each exec aggregate (one row per exec_aggregates row, same key): in_image,
-- modified, added, memory or unknown, the severity the rules give it (none for in_image, unknown and allowed
-- drift), the rule that allowed it, and the image repositories it was judged under. fingerprint is the rules':
-- an aggregate judged under other rules, or seen again since (last_seen moved), is judged again.
CREATE TABLE drift_findings (
    image_digest      text NOT NULL,
    executable_path   text NOT NULL,
    executable_sha256 text NOT NULL,
    cluster_id        bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    verdict           text NOT NULL CHECK (verdict IN ('in_image', 'modified', 'added', 'memory', 'unknown')),
    severity          text NOT NULL,
    severity_rank     smallint NOT NULL,
    allowed_by        text NOT NULL DEFAULT '',
    repositories      text[] NOT NULL,
    fingerprint       text NOT NULL,
    first_seen        timestamptz NOT NULL,
    last_seen         timestamptz NOT NULL,
    judged_at         timestamptz NOT NULL,
    PRIMARY KEY (image_digest, executable_path, executable_sha256, cluster_id)
);
-- The findings list: drift with a severity, worst first, then the most recently seen.
CREATE INDEX drift_findings_rank ON drift_findings (severity_rank DESC, last_seen DESC) WHERE severity_rank > 1;

-- The image ranking weighs drift like an integrity finding of its severity: drift_rank is the worst severity rank
-- (records.SeverityRank: 5 critical, 4 high, …) of the image's drift findings in any cluster, drift_findings how
-- many have a severity above none. The drift checker rewrites both after each judging pass of the image. risk_rank
-- (migration 005) becomes the greatest of the integrity severity, a loaded critical or high vulnerability, and
-- drift; the ranking index is rebuilt over it.
ALTER TABLE images
    ADD COLUMN drift_rank     smallint NOT NULL DEFAULT 0,
    ADD COLUMN drift_findings integer NOT NULL DEFAULT 0;
DROP INDEX images_by_risk;
ALTER TABLE images DROP COLUMN risk_rank;
ALTER TABLE images ADD COLUMN risk_rank smallint GENERATED ALWAYS AS
    (greatest(severity_rank, CASE WHEN vuln_rank >= 3 THEN vuln_rank ELSE 0 END, drift_rank)) STORED;
CREATE INDEX images_by_risk ON images (risk_rank DESC, vuln_rank DESC, clusters DESC, namespaces DESC, workloads DESC, pods DESC, digest)
    WHERE containers > 0 OR NOT state_seen;
