-- Vulnerabilities of running images (issue #17; docs/vulnerabilities.md).
--
-- An SBOM describes content addressed by digest, so it is fetched or generated once per digest and kept: a
-- re-match after a database update reads it from here, never from the registry again. document is the
-- runtime-service/internal/sbom SBOM as gzip-compressed JSON (package file lists included: they are what the
-- reachability join needs).
CREATE TABLE sboms (
    digest     text PRIMARY KEY,
    source     text NOT NULL,
    format     text NOT NULL,
    distro     text NOT NULL,
    packages   integer NOT NULL,
    files      integer NOT NULL,
    truncated  boolean NOT NULL,
    notes      text[] NOT NULL,
    document   bytea NOT NULL,
    created_at timestamptz NOT NULL
);

-- The SBOM work per digest: what is waiting, what failed and when to try again. A digest with a row in sboms
-- has state 'built'. matched_version is the vulnerability database version its findings were matched against;
-- reach_evaluated_at is when its findings' reachability was last decided from the events.
CREATE TABLE sbom_jobs (
    digest             text PRIMARY KEY,
    state              text NOT NULL CHECK (state IN ('pending', 'built', 'failed')),
    attempts           integer NOT NULL DEFAULT 0,
    last_error         text NOT NULL DEFAULT '',
    next_attempt_at    timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    matched_version    text NOT NULL DEFAULT '',
    reach_evaluated_at timestamptz
);
CREATE INDEX sbom_jobs_due ON sbom_jobs (next_attempt_at) WHERE state <> 'built';

-- One finding per (digest, advisory, package). reachability: 'loaded' (a file of the package was executed or
-- opened in a container of the digest), 'not_loaded' (sensors watched a container of it for the window and saw
-- none), 'unknown' (no sensor, or not watched long enough). evidence: the first event that made it loaded.
CREATE TABLE vulnerability_findings (
    digest        text NOT NULL,
    vuln_id       text NOT NULL,
    package_key   text NOT NULL,
    package       text NOT NULL,
    package_type  text NOT NULL,
    installed     text NOT NULL,
    fixed         text NOT NULL,
    severity      text NOT NULL,
    severity_rank smallint NOT NULL,
    cvss          real NOT NULL,
    cvss_vector   text NOT NULL,
    summary       text NOT NULL,
    aliases       text[] NOT NULL,
    source        text NOT NULL,
    reachability  text NOT NULL CHECK (reachability IN ('loaded', 'not_loaded', 'unknown')),
    evidence      jsonb,
    matched_at    timestamptz NOT NULL,
    PRIMARY KEY (digest, vuln_id, package_key)
);
CREATE INDEX vulnerability_findings_rank ON vulnerability_findings (severity_rank DESC, cvss DESC, vuln_id);

-- The image ranking weighs critical and high findings that are loaded (docs/vulnerabilities.md, "Ranking"):
-- vuln_rank is 4 with a loaded critical, 3 with a loaded high, 2 with a critical not (yet) seen loaded, 1 with
-- such a high, else 0. risk_rank, what the list ranks by, is the integrity/trust severity raised by a loaded
-- critical or high: a CVE whose code really runs counts like a finding of its severity, one that merely sits in
-- the image only breaks ties (vuln_rank comes right after risk_rank in every order).
ALTER TABLE images
    ADD COLUMN vuln_rank      smallint NOT NULL DEFAULT 0,
    ADD COLUMN vuln_total     integer NOT NULL DEFAULT 0,
    ADD COLUMN vuln_critical  integer NOT NULL DEFAULT 0,
    ADD COLUMN vuln_high      integer NOT NULL DEFAULT 0,
    ADD COLUMN vuln_fixable   integer NOT NULL DEFAULT 0,
    ADD COLUMN vuln_loaded    integer NOT NULL DEFAULT 0,
    ADD COLUMN risk_rank      smallint GENERATED ALWAYS AS
        (greatest(severity_rank, CASE WHEN vuln_rank >= 3 THEN vuln_rank ELSE 0 END)) STORED;
DROP INDEX images_by_risk;
CREATE INDEX images_by_risk ON images (risk_rank DESC, vuln_rank DESC, clusters DESC, namespaces DESC, workloads DESC, pods DESC, digest)
    WHERE containers > 0 OR NOT state_seen;

-- When a sensor first reported from a node: a container is watched from the later of its own first record and
-- this (a sensor that went stale and came back counts from its first report; docs/vulnerabilities.md says so).
ALTER TABLE sensor_health ADD COLUMN first_seen timestamptz;
UPDATE sensor_health SET first_seen = last_seen;

-- The process behind the first open of each file, so a finding loaded through a file open names who opened it.
ALTER TABLE file_aggregates ADD COLUMN first_process text NOT NULL DEFAULT '';
