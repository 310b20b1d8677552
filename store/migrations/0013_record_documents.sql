-- Large server-written fields of records kept in DynamoDB (a long clip's transcription or
-- speech map can pass DynamoDB's 400 KB item limit): the document lives here and the item
-- holds a marker (gt-records-dynamo's DynamoPgStore). Unused by an all-Postgres deployment.
CREATE TABLE record_documents (
    user_id text NOT NULL,
    resource text NOT NULL,
    record_id text NOT NULL,
    field text NOT NULL,
    doc jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, resource, record_id, field)
);
