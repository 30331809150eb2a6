-- Nexmark q4, average price for a category: the average winning bid (the highest bid made
-- while the auction ran) of the auctions of each category. The join bounds a bid's time by
-- the auction's own start and expiry columns, not by a fixed interval, which sluice's
-- stream-stream join needs; so the auctions' and bids' columns the query uses land in one
-- streaming table (one pass over the topic) and materialized views join and aggregate them
-- (recomputed at each update, as they have a join).
CREATE OR REFRESH STREAMING TABLE q4_auctions_and_bids AS
SELECT event_type, auction.id, auction.category, auction.dateTime AS starts, auction.expires,
       bid.auction AS bid_auction, bid.price, bid.dateTime AS bid_time
FROM STREAM(nexmark) WHERE event_type > 0;

-- (A subquery in FROM may not aggregate yet: the inner GROUP BY is a view of its own.)
CREATE OR REFRESH MATERIALIZED VIEW q4_winning_bids AS
SELECT A.id, A.category, max(B.price) AS final
FROM (SELECT id, category, starts, expires FROM q4_auctions_and_bids WHERE event_type = 1) A
JOIN (SELECT bid_auction, price, bid_time FROM q4_auctions_and_bids WHERE event_type = 2) B
  ON A.id = B.bid_auction
WHERE B.bid_time >= A.starts AND B.bid_time <= A.expires
GROUP BY A.id, A.category;

CREATE OR REFRESH MATERIALIZED VIEW nexmark_q4 AS
SELECT category, avg(final) AS avg_final FROM q4_winning_bids GROUP BY category;
