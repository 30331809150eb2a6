// Which configuration values must never be shown (passwords, keys, tokens), and the one way to
// show a value that may be one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// True when `key` names something that may hold a secret: a name containing password, passwd,
// pwd, pass, secret, key, token, jaas, credential or auth (case-insensitive), or a word within
// two edits of password or one of secret or token (`sasl.pasword`). Callers never echo values
// of keys they do not know either (see shown_value).
bool looks_secret(std::string_view key);

enum class KeyKnown { kKnown, kUnknown };

// What an error or log line may print for `value` of `key`: the value in quotes for a known,
// non-secret key; "<redacted>" otherwise (an unknown key may be a mistyped secret one).
std::string shown_value(std::string_view key, std::string_view value,
                        KeyKnown known = KeyKnown::kKnown);

// `text` with every occurrence of each of `secrets` replaced by "<redacted>", in one pass over
// `text` (an inserted "<redacted>" is never searched again). Besides each whole value it hides
// its form without surrounding blanks and any run of at least kMinSecretFragment characters
// that occurs in it (librdkafka trims values, quotes them from where parsing failed, and cuts
// messages at its error buffer's size); a value shorter than that is hidden wherever it occurs
// in full. For free text that may quote a secret: librdkafka errors and logs, SQL error lines.
inline constexpr size_t kMinSecretFragment = 6;
std::string redact_values(std::string_view text, const std::vector<std::string>& secrets);

// Values read from ${env:NAME} / ${file:path} references of the configuration are secret
// whatever key holds them (`sasl.mechanisms: ${file:pw}` would otherwise be quoted by
// "Unsupported SASL mechanism: ..."). remember_secret records one for this process;
// shown_value, property_rejected and the Kafka consumer hide every remembered value.
void remember_secret(std::string_view value);
std::vector<std::string> remembered_secrets();

// `url` with its whole user info (`scheme://user:password@host`, `scheme://APIKEY@host`: all
// from "://" to the last '@') replaced by "<redacted>", for errors that show a URL.
std::string url_without_password(std::string_view url);

}  // namespace sluice
