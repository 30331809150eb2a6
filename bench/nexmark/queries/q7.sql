-- Nexmark q7, highest bid: the bids with the highest price of their 10-second window. The
-- maximum per window is a streaming window over the bids; the bids that match it are a
-- stream-stream join bounded to the window (Flink's BETWEEN window_end - 10 s AND window_end).
CREATE OR REFRESH STREAMING TABLE q7_bids AS SELECT auction, bidder, price, dateTime, extra FROM STREAM(bid);

CREATE OR REFRESH STREAMING TABLE q7_max_price AS
SELECT max(price) AS maxprice, window.end AS window_end
FROM STREAM(q7_bids) WATERMARK dateTime DELAY OF INTERVAL 4 SECONDS
GROUP BY window(dateTime, '10 seconds');

CREATE OR REFRESH STREAMING TABLE nexmark_q7 AS
SELECT B.auction, B.bidder, B.price, B.dateTime, B.extra
FROM STREAM(q7_bids) WATERMARK dateTime DELAY OF INTERVAL 4 SECONDS B
JOIN STREAM(q7_max_price) WATERMARK window_end DELAY OF INTERVAL 4 SECONDS B1
  ON B.price = B1.maxprice
 AND B.dateTime BETWEEN B1.window_end - INTERVAL 10 SECONDS AND B1.window_end;
