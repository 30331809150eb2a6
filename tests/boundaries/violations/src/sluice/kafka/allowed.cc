// Fixture for scripts/check-boundaries.sh (never compiled): librdkafka inside kafka/ is allowed.
#include <librdkafka/rdkafkacpp.h>
int code() { return RdKafka::ERR_NO_ERROR; }
