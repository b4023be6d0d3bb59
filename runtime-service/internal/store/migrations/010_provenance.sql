-- Signatures and build provenance (issue #18, item 2; docs/provenance.md).
--
-- provenance_checks: for each running digest, what the provenance checker (runtime-service/internal/provenance)
-- found attached to it in its registry and verified under the signature and provenance policy: the deciding
-- rule, the status (verified, finding, not_judged), the finding codes (unsigned, signature_invalid,
-- provenance_missing) and the whole result (signatures, provenance attestations and their build facts) as JSON.
-- fingerprint is the policy's: a row checked under another policy is checked again, as is every row at
-- next_check_at (a signature may be attached after the image started). A failed check (the registry could not
-- be read) keeps the last result it had, with the error, and is tried again at next_check_at.
CREATE TABLE provenance_checks (
    digest        text PRIMARY KEY,
    state         text NOT NULL CHECK (state IN ('checked', 'failed')),
    fingerprint   text NOT NULL,
    status        text NOT NULL DEFAULT '' CHECK (status IN ('', 'verified', 'finding', 'not_judged')),
    rule          text NOT NULL DEFAULT '',
    findings      text[] NOT NULL DEFAULT '{}',
    severity      text NOT NULL DEFAULT '',
    severity_rank smallint NOT NULL DEFAULT 0,
    result        jsonb,
    error         text NOT NULL DEFAULT '',
    attempts      integer NOT NULL DEFAULT 0,
    checked_at    timestamptz NOT NULL,
    next_check_at timestamptz NOT NULL
);
CREATE INDEX provenance_checks_due ON provenance_checks (next_check_at);
CREATE INDEX provenance_findings ON provenance_checks (severity_rank DESC, checked_at DESC) WHERE status = 'finding';
