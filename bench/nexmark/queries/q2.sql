-- Nexmark q2, selection: the bids on every 123rd auction.
CREATE OR REFRESH STREAMING TABLE nexmark_q2 AS
SELECT auction, price FROM STREAM(bid) WHERE auction % 123 = 0;
