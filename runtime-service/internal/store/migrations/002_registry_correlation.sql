-- Registry correlation (issue #8): what each configured registry stores, the verdict timeline of images, and
-- the sensor counters' previous values (for events/s).

-- The configured registries and the outcome of their last listing. A registry removed from the configuration
-- keeps its row (configured = false) so its listing is not lost if it comes back; the API shows configured ones.
CREATE TABLE registries (
    name            text PRIMARY KEY,
    kind            text NOT NULL,
    url             text NOT NULL,
    host            text NOT NULL,
    configured      boolean NOT NULL DEFAULT true,
    feedback        boolean NOT NULL DEFAULT false,
    status          text NOT NULL DEFAULT 'pending',
    error           text NOT NULL DEFAULT '',
    last_refresh_at timestamptz,
    last_success_at timestamptz,
    last_duration   double precision NOT NULL DEFAULT 0,
    repositories    integer NOT NULL DEFAULT 0,
    tags            integer NOT NULL DEFAULT 0
);

-- Each tag a registry lists, with the digest it pointed at when last listed. An index's platform manifests are
-- kept in manifests, because a node runs (and reports) the platform manifest's digest, not the index's.
-- repository is the registry's own name for it (Artifactory: "<repo key>/<image>", its storage path); image is
-- the name the docker API of that repository uses ("<image>"), the part a running reference ends with.
-- deleted_at is set when a complete listing no longer has the tag, and cleared if it comes back.
CREATE TABLE registry_artifacts (
    registry     text NOT NULL REFERENCES registries (name) ON DELETE CASCADE,
    repository   text NOT NULL,
    image        text NOT NULL,
    tag          text NOT NULL,
    digest       text NOT NULL,
    media_type   text NOT NULL DEFAULT '',
    manifests    text[] NOT NULL DEFAULT '{}',
    first_listed timestamptz NOT NULL,
    last_listed  timestamptz NOT NULL,
    deleted_at   timestamptz,
    PRIMARY KEY (registry, repository, tag)
);
CREATE INDEX registry_artifacts_digest ON registry_artifacts (digest) WHERE deleted_at IS NULL;

-- The repository part of an image reference: "host/path" of "host/path:tag@digest". A tag never contains '/'
-- or ':', a port is always followed by '/', so the last ':' with neither after it starts the tag.
CREATE FUNCTION runtrust_image_repository(ref text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN regexp_replace(split_part(ref, '@', 1), ':[^/:]*$', '');

-- Whether a running reference's repository ("ghcr.io/acme/web", "jfrog.example/docker-local/acme/web") is the
-- registry repository ("acme/web"): equal, or ending in "/acme/web" (the host, an Artifactory repository key or
-- a mirror's prefix in front). Compared by position, not LIKE, because '_' is common in repository names.
CREATE FUNCTION runtrust_repository_matches(running text, repository text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN running = repository OR right(running, length(repository) + 1) = '/' || repository;

-- The current verdict of each (cluster, digest, reference), so ingest can tell a change; and every change, for
-- the image's timeline. old_* are NULL for the first assessment.
CREATE TABLE image_verdicts (
    cluster_id bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    digest     text NOT NULL,
    ref        text NOT NULL,
    verdict    text NOT NULL,
    severity   text NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (cluster_id, digest, ref)
);

CREATE TABLE verdict_changes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time         timestamptz NOT NULL,
    cluster_id   bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    digest       text NOT NULL,
    ref          text NOT NULL,
    old_verdict  text,
    old_severity text,
    new_verdict  text NOT NULL,
    new_severity text NOT NULL,
    reasons      text[] NOT NULL
);
CREATE INDEX verdict_changes_digest ON verdict_changes (digest, time DESC, id DESC);

-- The previous health record's counters, so the API can say events/s without keeping every record. A trigger
-- rather than a change to the ingest upsert: the ingest statement stays as it is, and any writer gets it.
ALTER TABLE sensor_health
    ADD COLUMN prev_events_seen    bigint,
    ADD COLUMN prev_events_dropped bigint,
    ADD COLUMN prev_seen           timestamptz;

CREATE FUNCTION sensor_health_keep_previous() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.last_seen > OLD.last_seen THEN
        NEW.prev_events_seen := OLD.events_seen;
        NEW.prev_events_dropped := OLD.events_dropped;
        NEW.prev_seen := OLD.last_seen;
    ELSE
        NEW.prev_events_seen := OLD.prev_events_seen;
        NEW.prev_events_dropped := OLD.prev_events_dropped;
        NEW.prev_seen := OLD.prev_seen;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER sensor_health_previous BEFORE UPDATE ON sensor_health
    FOR EACH ROW EXECUTE FUNCTION sensor_health_keep_previous();
