-- Every alert onto the alerts topic, keyed by card, as JSON; exactly once for read_committed
-- readers (each Kafka transaction also commits how far fraud_alerts was read).
CREATE SINK alerts_out OPTIONS (format => 'kafka', topic => '${alerts_topic}', key => 'card_id',
                                value_format => 'json');

CREATE FLOW alerts_to_kafka AS INSERT INTO alerts_out
SELECT card_id, window_start, window_end, n, total FROM STREAM(fraud_alerts);
