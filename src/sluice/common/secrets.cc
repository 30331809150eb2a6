// Secret-looking configuration keys and their redaction.
#include "sluice/common/secrets.h"

#include <algorithm>
#include <array>
#include <mutex>

#include "sluice/common/text.h"

namespace sluice {

bool looks_secret(std::string_view key) {
  static constexpr std::array<std::string_view, 10> kMarkers = {
      "password", "passwd", "pwd", "pass", "secret", "key", "token", "jaas", "credential", "auth"};
  const std::string lower = to_lower(std::string(key));
  for (auto marker : kMarkers) {
    if (lower.find(marker) != std::string::npos) return true;
  }
  // Misspelt markers too (`sasl.pasword`, `sasl.passwrod`): a word of the key within two edits
  // of "password", or one of "secret" / "token" (two would take in "socket").
  struct Word {
    std::string_view text;
    size_t max_edits;
  };
  static constexpr std::array<Word, 3> kWords = {{{"password", 2}, {"secret", 1}, {"token", 1}}};
  size_t begin = 0;
  while (begin <= lower.size()) {
    size_t end = lower.find_first_of("._-", begin);
    if (end == std::string::npos) end = lower.size();
    const std::string word = lower.substr(begin, end - begin);
    for (const auto& marker : kWords) {
      if (word.size() >= 4 && edit_distance(word, std::string(marker.text)) <= marker.max_edits) {
        return true;
      }
    }
    begin = end + 1;
  }
  return false;
}

namespace {
std::mutex remembered_mutex;
std::vector<std::string>& remembered() {
  static std::vector<std::string> values;  // guarded by remembered_mutex
  return values;
}
}  // namespace

void remember_secret(std::string_view value) {
  std::lock_guard lock(remembered_mutex);
  auto& values = remembered();
  if (std::find(values.begin(), values.end(), value) == values.end()) values.emplace_back(value);
}

std::vector<std::string> remembered_secrets() {
  std::lock_guard lock(remembered_mutex);
  return remembered();
}

std::string shown_value(std::string_view key, std::string_view value, KeyKnown known) {
  if (known == KeyKnown::kUnknown || looks_secret(key) ||
      redact_values(value, remembered_secrets()) != value) {
    return "<redacted>";
  }
  return "'" + std::string(value) + "'";
}

std::string redact_values(std::string_view text, const std::vector<std::string>& secrets) {
  std::vector<std::string_view> needles;
  for (const auto& secret : secrets) {
    std::string_view value(secret);
    const auto first = value.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) continue;  // blanks only: nothing to hide
    value = value.substr(first, value.find_last_not_of(" \t\r\n") - first + 1);
    needles.push_back(value);
  }
  if (needles.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    // The longest run starting at i that is a whole (trimmed) secret or a fragment of at least
    // kMinSecretFragment characters of one.
    size_t longest = 0;
    for (auto needle : needles) {
      const size_t min_run = std::min(needle.size(), kMinSecretFragment);
      if (text.size() - i < min_run) continue;
      for (size_t from = needle.find(text.substr(i, min_run)); from != std::string_view::npos;
           from = needle.find(text.substr(i, min_run), from + 1)) {
        size_t run = min_run;
        while (i + run < text.size() && from + run < needle.size() &&
               text[i + run] == needle[from + run]) {
          ++run;
        }
        longest = std::max(longest, run);
      }
    }
    if (longest == 0) {
      out.push_back(text[i]);
      ++i;
    } else {
      out += "<redacted>";
      i += longest;
    }
  }
  return out;
}

std::string url_without_password(std::string_view url) {
  std::string out(url);
  const auto scheme = out.find("://");
  if (scheme == std::string::npos) return out;
  // The user info may hold anything a user typed, '/', '?' and '#' included (`u:p/w@reg`), and
  // a user name alone may be a key (`APIKEY@reg`): everything from "://" to the last '@' is
  // hidden. A path with an '@' is hidden too — more than needed, never less.
  const auto authority = scheme + 3;
  const auto at = out.rfind('@');
  if (at == std::string::npos || at < authority) return out;
  return out.replace(authority, at - authority, "<redacted>");
}

}  // namespace sluice
