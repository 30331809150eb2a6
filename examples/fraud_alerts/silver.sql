-- Typed transactions; records without a card or time are dropped.
CREATE OR REFRESH STREAMING TABLE transactions_silver (
  CONSTRAINT has_card EXPECT (card_id IS NOT NULL AND ts IS NOT NULL) ON VIOLATION DROP ROW
) AS SELECT t.card_id, t.amount, t.ts, t.merchant
   FROM (SELECT from_json(CAST(value AS STRING), 'card_id STRING, amount DOUBLE, ts TIMESTAMP, merchant STRING') AS t
         FROM STREAM(transactions_bronze));
