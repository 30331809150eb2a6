-- Nexmark q0, pass through: every bid, unchanged.
CREATE OR REFRESH STREAMING TABLE nexmark_q0 AS
SELECT auction, bidder, price, channel, url, dateTime, extra FROM STREAM(bid);
