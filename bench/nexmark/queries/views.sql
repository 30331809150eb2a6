-- The Nexmark source (bench/nexmark/generate.py): one topic, JSON, an event_type (0 person,
-- 1 auction, 2 bid) and one nested object per event; the views split it into the three
-- streams as the Nexmark suite's ddl_views.sql does. Views are inlined into each query.
CREATE TEMPORARY VIEW nexmark AS
SELECT value.* FROM STREAM read_kafka(topic => '${topic}', starting_offsets => 'earliest', value_format => 'json',
  value_schema => 'event_type INT,
    person STRUCT<id: BIGINT, name: STRING, emailAddress: STRING, creditCard: STRING, city: STRING,
                  state: STRING, dateTime: TIMESTAMP, extra: STRING>,
    auction STRUCT<id: BIGINT, itemName: STRING, description: STRING, initialBid: BIGINT, reserve: BIGINT,
                   dateTime: TIMESTAMP, expires: TIMESTAMP, seller: BIGINT, category: BIGINT, extra: STRING>,
    bid STRUCT<auction: BIGINT, bidder: BIGINT, price: BIGINT, channel: STRING, url: STRING,
               dateTime: TIMESTAMP, extra: STRING>');

CREATE TEMPORARY VIEW person AS SELECT person.* FROM nexmark WHERE event_type = 0;
CREATE TEMPORARY VIEW auction AS SELECT auction.* FROM nexmark WHERE event_type = 1;
CREATE TEMPORARY VIEW bid AS SELECT bid.* FROM nexmark WHERE event_type = 2;
