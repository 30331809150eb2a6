// One pipeline stage on its own thread: the caller hands it a job (transform and write one
// batch) and goes on with the next one (reading Kafka) while the job runs; at most one job is
// queued behind the running one, so memory stays bounded. Failures are sticky: the first one
// is returned by every later submit() and drain().
#pragma once

#include <arrow/status.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <pthread.h>

namespace sluice {

// Thread-safe: submit() and drain() come from one owner thread, jobs run on the stage's own.
// mu_ guards job_, running_, stop_ and status_.
class BackgroundStage {
 public:
  // `name` names the thread (top, perf, gdb; at most 15 characters).
  explicit BackgroundStage(std::string name) : name_(std::move(name)) {}
  BackgroundStage(const BackgroundStage&) = delete;
  BackgroundStage& operator=(const BackgroundStage&) = delete;
  ~BackgroundStage() {
    if (!worker_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    worker_.join();  // after the running and queued jobs: they may use what outlives the stage
  }

  // Queues `job`, waiting while another one is queued; the thread starts with the first job.
  arrow::Status submit(std::function<arrow::Status()> job) {
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return !job_; });
    if (!status_.ok()) return status_;
    job_ = std::move(job);
    if (!worker_.joinable()) worker_ = std::thread([this] { run(); });
    wake_.notify_all();
    return arrow::Status::OK();
  }

  // Waits until every submitted job has run; the first failure, if any.
  arrow::Status drain() {
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return !job_ && !running_; });
    return status_;
  }

 private:
  void run() {
    pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
    std::unique_lock lock(mu_);
    for (;;) {
      wake_.wait(lock, [&] { return job_ || stop_; });
      if (!job_) return;  // stopping, nothing queued
      auto job = std::move(job_);
      job_ = nullptr;
      running_ = true;
      const bool skip = !status_.ok();  // after a failure nothing more is worth doing
      lock.unlock();
      done_.notify_all();  // room for the next job
      arrow::Status st = skip ? arrow::Status::OK() : job();
      lock.lock();
      running_ = false;
      if (status_.ok() && !st.ok()) status_ = std::move(st);
      done_.notify_all();
    }
  }

  const std::string name_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::function<arrow::Status()> job_;
  bool running_ = false;
  bool stop_ = false;
  arrow::Status status_;
  std::thread worker_;
};

}  // namespace sluice
