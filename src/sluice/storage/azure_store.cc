// Azure Blob Storage ObjectStore (azure_store.h).
#include "sluice/storage/azure_store.h"

#include <arrow/filesystem/azurefs.h>
#include <arrow/io/interfaces.h>
#include <curl/curl.h>

#include <arrow/buffer.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <utility>
#include <vector>

#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/storage/http_util.h"
#include "sluice/storage/s3_client.h"  // xml_values

namespace sluice::storage {

namespace {

int64_t http_date_nanos(const std::string& text) {
  const time_t t = curl_getdate(text.c_str(), nullptr);
  return t < 0 ? 0 : static_cast<int64_t>(t) * 1'000'000'000;
}

// The hint a refused request gets: the settings of the credentials in use.
const char* credential_hint(bool uses_ad) {
  return uses_ad ? " (check the service principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET) and "
                   "its role on the account, e.g. Storage Blob Data Contributor)"
                 : " (check AZURE_STORAGE_ACCOUNT_KEY / AZURE_STORAGE_SAS_TOKEN and the SAS token's permissions)";
}

// Arrow's options for the same endpoint, account and credentials as `config`.
arrow::Result<arrow::fs::AzureOptions> arrow_options(const AzureConfig& config) {
  arrow::fs::AzureOptions options;
  options.account_name = config.account;
  const auto scheme_end = config.endpoint.find("://");
  const std::string scheme = config.endpoint.substr(0, scheme_end);
  std::string authority = config.endpoint.substr(scheme_end + 3);
  std::string path;
  if (const auto slash = authority.find('/'); slash != std::string::npos) {
    path = authority.substr(slash);
    authority = authority.substr(0, slash);
  }
  if (!path.empty()) {
    // Path-style (Azurite): Arrow puts the account after a host that does not start with '.'.
    if (path != "/" + config.account) {
      return invalid("Azure endpoint {}: a path in the endpoint must be the account name "
                     "(/{}), as Azurite's http://127.0.0.1:10000/devstoreaccount1",
                     config.endpoint, config.account);
    }
    options.blob_storage_authority = authority;
    options.dfs_storage_authority = authority;
  } else if (authority.rfind(config.account + ".", 0) == 0) {
    // Host-style: "<account>.blob.<suffix>" -> ".blob.<suffix>", Arrow prepends the account.
    options.blob_storage_authority = authority.substr(config.account.size());
    std::string dfs = options.blob_storage_authority;
    if (dfs.rfind(".blob.", 0) == 0) dfs.replace(0, 6, ".dfs.");
    options.dfs_storage_authority = dfs;
  } else {
    return invalid("Azure endpoint {}: the host must start with the account name ({}.) or the "
                   "endpoint must end in /{} (path-style, as Azurite)",
                   config.endpoint, config.account, config.account);
  }
  options.blob_storage_scheme = scheme;
  options.dfs_storage_scheme = scheme;
  if (config.uses_ad() && config.ad.client_secret.empty()) {
    ARROW_RETURN_NOT_OK(options.ConfigureWorkloadIdentityCredential());  // from the environment (config checked)
  } else if (config.uses_ad()) {
    ARROW_RETURN_NOT_OK(
        options.ConfigureClientSecretCredential(config.ad.tenant_id, config.ad.client_id, config.ad.client_secret));
  } else if (!config.sas_token.empty()) {
    ARROW_RETURN_NOT_OK(options.ConfigureSASCredential("?" + config.sas_token));
  } else {
    ARROW_RETURN_NOT_OK(options.ConfigureAccountKeyCredential(config.account_key));
  }
  return options;
}

// Arrow's Azure errors quote the request URL, which carries a SAS token's signature: it is
// replaced before any message leaves the store, and a refusal gets the settings to check.
arrow::Status redacted(const arrow::Status& status) {
  if (status.ok()) return status;
  static const std::regex kSignature("sig=[^&\\s'\"]*");
  std::string message = std::regex_replace(status.message(), kSignature, "sig=<redacted>");
  if (message.find("AuthenticationException") != std::string::npos) {
    // The Azure SDK could not get a token (its own request to AZURE_AUTHORITY_HOST).
    message += " (Azure AD: check AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_AUTHORITY_HOST; "
               "for a private certificate authority set SSL_CERT_FILE)";
  } else if (message.find(" 403 ") != std::string::npos) {
    message += " (check the credentials: AZURE_STORAGE_ACCOUNT_KEY / AZURE_STORAGE_SAS_TOKEN and the SAS "
               "token's permissions, or the service principal's role on the account)";
  } else if (message.find("SSL peer certificate") != std::string::npos) {
    message += " (the server's certificate is not trusted: for a private certificate authority set "
               "SSL_CERT_FILE to its PEM file in sluice's environment)";
  }
  return arrow::Status(status.code(), std::move(message), status.detail());
}
template <typename T>
arrow::Result<T> redacted(arrow::Result<T> result) {
  if (result.ok()) return result;
  return redacted(result.status());
}

// Arrow's input file with every error redacted (reads happen long after open_input returns).
class RedactedInput final : public arrow::io::RandomAccessFile {
 public:
  explicit RedactedInput(std::shared_ptr<arrow::io::RandomAccessFile> in) : in_(std::move(in)) {}
  arrow::Status Close() override { return redacted(in_->Close()); }
  bool closed() const override { return in_->closed(); }
  arrow::Result<int64_t> Tell() const override { return redacted(in_->Tell()); }
  arrow::Status Seek(int64_t position) override { return redacted(in_->Seek(position)); }
  arrow::Result<int64_t> GetSize() override { return redacted(in_->GetSize()); }
  arrow::Result<int64_t> Read(int64_t nbytes, void* out) override { return redacted(in_->Read(nbytes, out)); }
  arrow::Result<std::shared_ptr<arrow::Buffer>> Read(int64_t nbytes) override {
    return redacted(in_->Read(nbytes));
  }
  arrow::Result<int64_t> ReadAt(int64_t position, int64_t nbytes, void* out) override {
    return redacted(in_->ReadAt(position, nbytes, out));
  }
  arrow::Result<std::shared_ptr<arrow::Buffer>> ReadAt(int64_t position, int64_t nbytes) override {
    return redacted(in_->ReadAt(position, nbytes));
  }

 private:
  std::shared_ptr<arrow::io::RandomAccessFile> in_;
};

// Arrow's output stream with every error redacted.
class RedactedOutput final : public arrow::io::OutputStream {
 public:
  explicit RedactedOutput(std::shared_ptr<arrow::io::OutputStream> out) : out_(std::move(out)) {}
  arrow::Status Close() override { return redacted(out_->Close()); }
  arrow::Status Abort() override { return redacted(out_->Abort()); }
  bool closed() const override { return out_->closed(); }
  arrow::Result<int64_t> Tell() const override { return redacted(out_->Tell()); }
  arrow::Status Write(const void* data, int64_t nbytes) override { return redacted(out_->Write(data, nbytes)); }
  arrow::Status Write(const std::shared_ptr<arrow::Buffer>& data) override { return redacted(out_->Write(data)); }
  arrow::Status Flush() override { return redacted(out_->Flush()); }

 private:
  std::shared_ptr<arrow::io::OutputStream> out_;
};

}  // namespace

arrow::Result<std::shared_ptr<AzureStore>> AzureStore::Make(AzureConfig config) {
  std::shared_ptr<AzureTokenProvider> tokens;
  if (config.uses_ad()) {
    // The first token now: a wrong secret is reported here, clearly, before Arrow's SDK tries.
    ARROW_ASSIGN_OR_RAISE(tokens, AzureTokenProvider::Make(config.ad));
  }
  // The SDK's credential reads the authority host (workload identity: tenant, client id, token
  // file) from the environment here; azure_config_from refused any storage option that differs.
  ARROW_ASSIGN_OR_RAISE(auto options, arrow_options(config));
  auto fs = arrow::fs::AzureFileSystem::Make(options);
  if (!fs.ok()) return io_failure(redacted(fs.status()), "cannot set up Azure Blob access to", config.endpoint);
  return std::shared_ptr<AzureStore>(
      new AzureStore(AzureClient(std::move(config), std::move(tokens)), std::move(*fs)));
}

arrow::Status AzureStore::failed(const char* what, const std::string& path, const AzureResponse& r) const {
  std::string hint;
  if (r.status == 403) hint = credential_hint(client_.config().uses_ad());
  if (r.status == 404 && azure_error_code(r) == "ContainerNotFound") hint = " (create the container first)";
  auto st = io_error("Azure {} {}: {}{}", what, display(path), azure_error_text(r), hint);
  return r.status >= 500 || r.status == 429 ? mark_retryable(st) : st;
}

arrow::Result<std::vector<ObjectInfo>> AzureStore::list(const std::string& dir,
                                                        const std::string& start_after) const {
  return list_objects(dir, start_after, ListDepth::kFolder);
}

arrow::Result<std::vector<ObjectInfo>> AzureStore::list_recursive(const std::string& dir) const {
  return list_objects(dir, "", ListDepth::kRecursive);
}

arrow::Result<std::vector<ObjectInfo>> AzureStore::list_objects(const std::string& dir, const std::string& start_after,
                                                                ListDepth depth) const {
  const auto [container, key] = split_bucket_key(dir);
  const std::string prefix = key.empty() ? "" : key + "/";
  std::vector<ObjectInfo> out;
  std::string marker;
  do {
    AzureQuery query = {{"comp", "list"}, {"prefix", prefix}, {"restype", "container"}};
    if (depth == ListDepth::kFolder) query.insert(query.begin() + 1, {"delimiter", "/"});
    if (!marker.empty()) query.emplace_back("marker", marker);
    count_list();
    ARROW_ASSIGN_OR_RAISE(auto r, client_.send("GET", container, "", query, "", {}));
    if (r.status != 200) return failed("list", dir, r);
    size_t pos = 0;
    while ((pos = r.body.find("<Blob>", pos)) != std::string::npos) {
      const size_t end = r.body.find("</Blob>", pos);
      auto names = xml_values(r.body, "Name", pos, end);
      auto sizes = xml_values(r.body, "Content-Length", pos, end);
      auto times = xml_values(r.body, "Last-Modified", pos, end);
      pos = end == std::string::npos ? r.body.size() : end;
      if (names.empty() || names[0].size() <= prefix.size()) continue;
      ObjectInfo info;
      info.name = names[0].substr(prefix.size());
      if (!start_after.empty() && info.name <= start_after) continue;
      if (!sizes.empty()) {
        ARROW_ASSIGN_OR_RAISE(info.size, parse_object_size(sizes[0], "Azure list " + display(dir)));
      }
      info.mtime_nanos = times.empty() ? 0 : http_date_nanos(times[0]);
      out.push_back(std::move(info));
    }
    auto next = xml_values(r.body, "NextMarker");
    marker = next.empty() ? "" : next[0];
  } while (!marker.empty());
  return out;
}

arrow::Result<std::optional<ObjectInfo>> AzureStore::head(const std::string& path) const {
  const auto [container, blob] = split_bucket_key(path);
  count_head();
  ARROW_ASSIGN_OR_RAISE(auto r, client_.send("HEAD", container, blob, {}, "", {}));
  if (r.status == 404 && r.headers["x-ms-error-code"] != "ContainerNotFound") return std::optional<ObjectInfo>{};
  if (r.status != 200) return failed("HEAD", path, r);
  ObjectInfo info;
  info.name = blob.substr(blob.rfind('/') + 1);
  ARROW_ASSIGN_OR_RAISE(info.size, parse_object_size(r.headers["content-length"], "Azure HEAD " + display(path)));
  info.mtime_nanos = http_date_nanos(r.headers["last-modified"]);
  return std::optional<ObjectInfo>{std::move(info)};
}

arrow::Result<std::string> AzureStore::read(const std::string& path) const {
  const auto [container, blob] = split_bucket_key(path);
  count_get();
  ARROW_ASSIGN_OR_RAISE(auto r, client_.send("GET", container, blob, {}, "", {}));
  if (r.status != 200) return failed("GET", path, r);
  return std::move(r.body);
}

arrow::Result<std::shared_ptr<arrow::io::RandomAccessFile>> AzureStore::open_input(const std::string& path) const {
  count_head();  // Arrow asks for the properties (size), then sends ranged GETs
  count_get();
  auto file = fs_->OpenInputFile(path);
  if (!file.ok()) return io_failure(redacted(file.status()), "cannot open", display(path));
  return std::make_shared<RedactedInput>(std::move(*file));
}

arrow::Result<std::shared_ptr<arrow::io::OutputStream>> AzureStore::open_output(const std::string& path) {
  count_put();
  auto out = fs_->OpenOutputStream(path);
  if (!out.ok()) return io_failure(redacted(out.status()), "cannot create", display(path));
  return std::make_shared<RedactedOutput>(std::move(*out));
}

arrow::Status AzureStore::finish_output(const std::string& path, arrow::io::OutputStream& out) {
  if (out.closed()) return arrow::Status::OK();
  auto st = out.Close();  // commits the block list: the blob's content appears whole
  if (!st.ok()) return io_failure(st, "cannot upload", display(path));
  return arrow::Status::OK();
}

arrow::Result<PutResult> AzureStore::put_if_absent(const std::string& path, const std::string& content) {
  const auto [container, blob] = split_bucket_key(path);
  count_put();
  ARROW_ASSIGN_OR_RAISE(auto r, client_.send("PUT", container, blob, {}, content,
                                             {"If-None-Match: *", "x-ms-blob-type: BlockBlob"}));
  if (r.status == 201) return PutResult::kWritten;
  const std::string code = azure_error_code(r);
  if (r.status == 412 || (r.status == 409 && (code == "BlobAlreadyExists" || code.empty()))) {
    return PutResult::kAlreadyExists;
  }
  if (r.status == 400 || r.status == 501) {
    return arrow::Status::NotImplemented(fmt::format(
        "Azure conditional Put Blob (If-None-Match: *) of {} was refused ({}): this endpoint does "
        "not support conditional writes, and sluice will not commit to a Delta table without them "
        "(two writers could overwrite one version); use Azure Blob Storage or Azurite",
        display(path), azure_error_text(r)));
  }
  return failed("conditional PUT", path, r);
}

arrow::Status AzureStore::put(const std::string& path, const std::string& content) {
  const auto [container, blob] = split_bucket_key(path);
  count_put();
  ARROW_ASSIGN_OR_RAISE(auto r, client_.send("PUT", container, blob, {}, content, {"x-ms-blob-type: BlockBlob"}));
  if (r.status != 201) return failed("PUT", path, r);
  return arrow::Status::OK();
}

arrow::Status AzureStore::remove(const std::string& path) {
  const auto [container, blob] = split_bucket_key(path);
  count_remove();
  ARROW_ASSIGN_OR_RAISE(auto r, client_.send("DELETE", container, blob, {}, "", {}));
  if (r.status != 202 && r.status != 200 && !(r.status == 404 && azure_error_code(r) == "BlobNotFound")) {
    return failed("DELETE", path, r);
  }
  return arrow::Status::OK();
}

arrow::Result<OpenedLocation> open_azure_location(const Location& location, const StorageOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto config, azure_config_from(options, location.account));
  // One store (and request count) per endpoint and identity in the process; never destroyed,
  // as the S3 stores (object_store.cc): the Azure SDK's own statics may be gone at exit.
  static std::mutex mutex;
  static auto& stores = *std::make_unique<std::map<std::string, std::shared_ptr<ObjectStore>>>().release();  // guarded by mutex
  const std::string key = config.endpoint + '\n' + config.account + '\n' + config.account_key + '\n' +
                          config.sas_token + '\n' + config.ad.authority_host + '\n' + config.ad.tenant_id + '\n' +
                          config.ad.client_id + '\n' + config.ad.client_secret + '\n' +
                          config.ad.federated_token_file;
  std::lock_guard lock(mutex);
  auto& store = stores[key];
  if (!store) {
    ARROW_ASSIGN_OR_RAISE(auto made, AzureStore::Make(std::move(config)));
    store = std::move(made);
  }
  std::string root = location.bucket;
  if (!location.path.empty()) root += "/" + location.path;
  return OpenedLocation{store, root};
}

}  // namespace sluice::storage
