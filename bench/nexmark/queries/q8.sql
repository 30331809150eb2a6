-- Nexmark q8, monitor new users: persons who created an auction in the 10-second window they
-- joined in. The persons' and auctions' columns the query uses land in one streaming table (one
-- pass over the topic); each side is a tumbling window from it, and the two are joined on the
-- person and the window.
CREATE OR REFRESH STREAMING TABLE q8_persons_and_auctions AS
SELECT event_type, person.id, person.name, auction.seller,
       CASE WHEN event_type = 0 THEN person.dateTime ELSE auction.dateTime END AS dateTime
FROM STREAM(nexmark) WHERE event_type < 2;

CREATE OR REFRESH STREAMING TABLE q8_persons AS
SELECT id, name, window.start AS starttime, window.end AS endtime, count(*) AS n
FROM (SELECT id, name, dateTime FROM STREAM(q8_persons_and_auctions) WHERE event_type = 0)
  WATERMARK dateTime DELAY OF INTERVAL 4 SECONDS
GROUP BY id, name, window(dateTime, '10 seconds');

CREATE OR REFRESH STREAMING TABLE q8_sellers AS
SELECT seller, window.start AS starttime, window.end AS endtime, count(*) AS n
FROM (SELECT seller, dateTime FROM STREAM(q8_persons_and_auctions) WHERE event_type = 1)
  WATERMARK dateTime DELAY OF INTERVAL 4 SECONDS
GROUP BY seller, window(dateTime, '10 seconds');

CREATE OR REFRESH STREAMING TABLE nexmark_q8 AS
SELECT P.id, P.name, P.starttime
FROM STREAM(q8_persons) WATERMARK starttime DELAY OF INTERVAL 4 SECONDS P
JOIN STREAM(q8_sellers) WATERMARK starttime DELAY OF INTERVAL 4 SECONDS A
  ON P.id = A.seller AND A.starttime BETWEEN P.starttime AND P.starttime;
