// Fixture for scripts/check-boundaries.sh (never compiled): exec/ including Kafka code.
#include "sluice/format/kafka_values.h"
#include "sluice/kafka/consumer.h"
