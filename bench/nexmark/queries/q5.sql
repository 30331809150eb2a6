-- Nexmark q5, hot items: per sliding window (10 s, every 2 s), the auctions with the most
-- bids. The count per auction and window is a streaming window straight from Kafka; the
-- maximum per window and the rows that reach it are a materialized view over those counts
-- (sluice has no streaming aggregation over a windowed table's output).
CREATE OR REFRESH STREAMING TABLE q5_auction_bids AS
SELECT auction, window.start AS starttime, window.end AS endtime, count(*) AS num
FROM STREAM(bid) WATERMARK dateTime DELAY OF INTERVAL 4 SECONDS
GROUP BY auction, window(dateTime, '10 seconds', '2 seconds');

-- (A subquery in FROM may not aggregate yet: the maximum per window is a view of its own.)
CREATE OR REFRESH MATERIALIZED VIEW q5_max_bids AS
SELECT starttime, endtime, max(num) AS maxn FROM q5_auction_bids GROUP BY starttime, endtime;

CREATE OR REFRESH MATERIALIZED VIEW nexmark_q5 AS
SELECT AuctionBids.auction, AuctionBids.num, AuctionBids.starttime
FROM q5_auction_bids AuctionBids
JOIN q5_max_bids MaxBids
  ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime
WHERE AuctionBids.num >= MaxBids.maxn;
