-- Column comments and tags (Databricks' TAGS spelling); a tag without a value.
CREATE STREAMING TABLE users (
  id BIGINT NOT NULL COMMENT 'key',
  email STRING COMMENT 'login' TAGS ('pii' = 'email', 'gdpr'),
  address STRUCT<city: STRING> TAGS ('pii' = 'address')
) COMMENT 'people'
AS SELECT * FROM STREAM(raw);
