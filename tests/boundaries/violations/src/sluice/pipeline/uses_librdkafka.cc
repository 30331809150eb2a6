// Fixture for scripts/check-boundaries.sh (never compiled): librdkafka outside kafka/.
#include <librdkafka/rdkafka.h>
bool is_end(const rd_kafka_message_t* m) { return m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF; }
