-- Nexmark q4, average price for a category: the average winning bid (the highest bid made
-- while the auction ran) of the auctions of each category. The join bounds a bid's time by
-- the auction's own start and expiry columns, not by a fixed interval, which sluice's
-- stream-stream join needs; so auctions and bids land in one streaming table and a
-- materialized view joins and aggregates them (recomputed at each update, as it has a join).
CREATE OR REFRESH STREAMING TABLE q4_auctions_and_bids AS
SELECT event_type, auction, bid FROM STREAM(nexmark) WHERE event_type > 0;

-- (A subquery in FROM may not aggregate yet: the inner GROUP BY is a view of its own.)
CREATE OR REFRESH MATERIALIZED VIEW q4_winning_bids AS
SELECT A.id, A.category, max(B.price) AS final
FROM (SELECT auction.* FROM q4_auctions_and_bids WHERE event_type = 1) A
JOIN (SELECT bid.* FROM q4_auctions_and_bids WHERE event_type = 2) B ON A.id = B.auction
WHERE B.dateTime >= A.dateTime AND B.dateTime <= A.expires
GROUP BY A.id, A.category;

CREATE OR REFRESH MATERIALIZED VIEW nexmark_q4 AS
SELECT category, avg(final) AS avg_final FROM q4_winning_bids GROUP BY category;
