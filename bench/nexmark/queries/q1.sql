-- Nexmark q1, currency conversion: every bid's price in euros.
CREATE OR REFRESH STREAMING TABLE nexmark_q1 AS
SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM STREAM(bid);
