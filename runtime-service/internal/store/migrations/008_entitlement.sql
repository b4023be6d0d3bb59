-- Node entitlement (docs/runtime-service.md, "Entitlement"): the sensors a cluster's licensed node count refused
-- at enrolment, one row per (cluster, collector id), so the API and UI can say who was refused and when. Written
-- after the refused enrolment's transaction rolled back (a refusal changes nothing else), deleted when that
-- collector enrols, and read for the last 24 hours (store.RefusalWindow); rows older than that are removed when
-- the cluster's next refusal is written.
CREATE TABLE sensor_refusals (
    cluster_id   bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    collector_id text NOT NULL,
    first_at     timestamptz NOT NULL,
    last_at      timestamptz NOT NULL,
    attempts     bigint NOT NULL,
    entitled     integer NOT NULL,
    PRIMARY KEY (cluster_id, collector_id)
);
