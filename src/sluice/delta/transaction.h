// A transaction: the actions one commit adds to a table, committed optimistically with
// put-if-absent, conflict detection against the commits that won a race, and retry.
#pragma once

#include <arrow/result.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sluice/common/strong_types.h"
#include "sluice/delta/actions.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/snapshot.h"

namespace sluice::delta {

// Delta's isolation levels for a transaction that read the table (delta.isolationLevel).
// WriteSerializable (the default here, as in Databricks) lets a concurrent blind append pass a
// DML whose predicate its files match; Serializable does not.
enum class IsolationLevel { kSerializable, kWriteSerializable };

// What a read-then-write transaction (DELETE, UPDATE, MERGE) read: checked against every
// commit that won a race, as Delta's ConflictChecker does.
struct ReadSet {
  // Files matching these (a conjunction; empty: the whole table) were read.
  std::vector<ColumnPredicate> predicates;
  // The paths of the files read.
  std::set<std::string> files;
  IsolationLevel isolation = IsolationLevel::kWriteSerializable;
};

// delta.isolationLevel of a table: Serializable, or WriteSerializable (also when unset).
IsolationLevel isolation_level(const Metadata& metadata);
const char* isolation_level_name(IsolationLevel level);

struct CommitOptions {
  std::string operation = "WRITE";  // commitInfo.operation, e.g. "STREAMING UPDATE"
  nlohmann::json operation_parameters = nlohmann::json::object();
  nlohmann::json operation_metrics = nlohmann::json::object();
  int max_attempts = 100;
  std::string isolation_level = "Serializable";  // commitInfo.isolationLevel
};

struct CommitResult {
  DeltaVersion version;
  int attempts = 1;  // 1 when no race was lost
  // The table right after this commit (replayed from the read snapshot forward).
  std::shared_ptr<const Snapshot> snapshot;
  // Set when the commit landed but writing the checkpoint due at its version failed; the
  // table stays valid (readers replay JSON) and a later commit checkpoints again.
  arrow::Status checkpoint_status;
};

// Whether `status` says a concurrent commit conflicts with a transaction (e.g. it recorded
// progress for one of the same txn appIds): re-read the table, then redo the work.
bool is_commit_conflict(const arrow::Status& status);

// delta.checkpointInterval of a table (default 10).
int64_t checkpoint_interval(const Metadata& metadata);

class Transaction {
 public:
  // `read_snapshot` is the state the transaction's decisions were based on; null when the
  // transaction creates the table (it must then set protocol and metadata).
  Transaction(std::shared_ptr<LogStore> store, std::shared_ptr<const Snapshot> read_snapshot);

  void set_protocol(Protocol protocol) { protocol_ = std::move(protocol); }
  void set_metadata(Metadata metadata) { metadata_ = std::move(metadata); }
  void add_file(Add add) { adds_.push_back(std::move(add)); }
  void remove_file(Remove remove) { removes_.push_back(std::move(remove)); }
  // An action sluice does not model otherwise (a `cdc` change data file, change_data.h).
  void add_other(OtherAction action) { others_.push_back(std::move(action)); }
  // Sets (or with removed=true removes) a domain's metadata; a concurrent commit that set the
  // same domain is a conflict (PROTOCOL.md "Domain Metadata").
  void set_domain_metadata(DomainMetadata domain) { domains_.push_back(std::move(domain)); }
  // Marks every add and remove dataChange=false: the commit rearranges rows without changing
  // them (as OPTIMIZE does), so change-feed and streaming readers skip it.
  void mark_no_data_change();
  // Records application progress; a concurrent commit of the same appId is a conflict.
  void set_txn(std::string app_id, int64_t version);
  // Makes the commit conflict with a concurrent commit that changed what `read` covers.
  void set_read_set(ReadSet read) { read_set_ = std::move(read); }

  const std::vector<Add>& adds() const { return adds_; }

  // The commitInfo of a streaming append of `rows` rows (in this transaction's files), as
  // Spark's streaming writes record it: operation STREAMING UPDATE, outputMode Append,
  // numAddedFiles/numOutputRows/numOutputBytes (the files' sizes)/numRemovedFiles.
  CommitOptions streaming_update(int64_t rows) const;

  // Commits at the next free version. Error codes: AlreadyExists-class conflicts come back as
  // Status::Invalid with "conflict" in the message and are not retryable.
  arrow::Result<CommitResult> commit(const CommitOptions& options);

 private:
  arrow::Status check_writable() const;
  arrow::Status discard_after_failed_put(const arrow::Status& error, DeltaVersion v,
                                         const std::string& content);
  arrow::Result<CommitResult> finish_commit(DeltaVersion version, int attempts);
  arrow::Status check_conflicts(const std::vector<Action>& winning, DeltaVersion v) const;
  arrow::Status check_read_conflicts(const std::vector<Action>& winning, DeltaVersion v) const;
  std::vector<Action> actions_for_commit(const CommitOptions& options, int64_t read_version) const;

  std::shared_ptr<LogStore> store_;
  std::shared_ptr<const Snapshot> read_snapshot_;
  std::optional<Protocol> protocol_;
  std::optional<Metadata> metadata_;
  std::vector<Add> adds_;
  std::vector<Remove> removes_;
  std::vector<OtherAction> others_;
  std::vector<DomainMetadata> domains_;
  std::vector<Txn> txns_;
  std::optional<ReadSet> read_set_;
  std::string txn_id_;
  bool discarded_ = false;  // a failed commit deleted the data files
};

}  // namespace sluice::delta
