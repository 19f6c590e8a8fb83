-- Topics with a committed change whose events may not have reached Redis yet. A row
-- is written in the same transaction as the change and deleted once the events were
-- published. A row that outlives its process (a crash between the commit and the
-- publish) makes another process give the topic a new epoch, so every subscriber
-- refetches the state instead of missing the change.
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbox_created_at ON outbox (created_at);
