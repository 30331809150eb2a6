// librdkafka client properties checked offline (no broker), with errors that never show a
// value that may be secret.
#pragma once

#include <arrow/status.h>

#include <string>

namespace sluice::kafka {

// Whether librdkafka knows `key` and accepts `value` for it, checked on a throw-away
// configuration object. The error names the key, suggests a close known name for an unknown
// one, and shows the value only for known, non-secret keys.
arrow::Status check_property(const std::string& key, const std::string& value);

// The error for a property librdkafka refused (`unknown`: it has no such property); `reason`
// is librdkafka's text, from which the value is removed when it must not be shown.
arrow::Status property_rejected(const std::string& key, const std::string& value, bool unknown,
                                const std::string& reason);

}  // namespace sluice::kafka
