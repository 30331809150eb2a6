-- Nexmark q3, local item suggestion: who sells in OR, ID or CA in category 10, and which
-- auctions. Flink runs it as an unbounded stream-stream join; sluice's streaming joins need a
-- time bound between the two sides, so the persons and auctions that pass the filters (the
-- columns the query uses) land in one streaming table (one pass over the topic) and a
-- materialized view joins them (recomputed at each update).
CREATE OR REFRESH STREAMING TABLE q3_sellers_and_auctions AS
SELECT event_type, person.id AS person_id, person.name, person.city, person.state,
       auction.id AS auction_id, auction.seller
FROM STREAM(nexmark)
WHERE (event_type = 0 AND person.state IN ('OR', 'ID', 'CA')) OR (event_type = 1 AND auction.category = 10);

CREATE OR REFRESH MATERIALIZED VIEW nexmark_q3 AS
SELECT P.name, P.city, P.state, A.auction_id AS id
FROM (SELECT auction_id, seller FROM q3_sellers_and_auctions WHERE event_type = 1) A
JOIN (SELECT person_id, name, city, state FROM q3_sellers_and_auctions WHERE event_type = 0) P
  ON A.seller = P.person_id;
