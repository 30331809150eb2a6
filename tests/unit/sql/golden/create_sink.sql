CREATE SINK alerts_out OPTIONS (format => 'kafka', topic => 'alerts', key => 'card_id', cluster => 'default',
  kafka.sasl.password => 'never-shown', 'kafka.client.id' = 'x',);
CREATE FLOW alerts_to_kafka AS INSERT INTO alerts_out SELECT * FROM STREAM(alerts);
