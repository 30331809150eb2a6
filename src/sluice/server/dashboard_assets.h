// The dashboard's files (web/), bundled at build time and embedded in the binary: the
// generated source (web/embed.cmake, in the build folder) defines dashboard_asset().
#pragma once

#include <optional>
#include <string_view>

namespace sluice::server {

struct DashboardAsset {
  std::string_view content_type;
  std::string_view body;
};

// The file served at `path` ("/" is index.html); nullopt for a path that is not one of them.
std::optional<DashboardAsset> dashboard_asset(std::string_view path);

}  // namespace sluice::server
