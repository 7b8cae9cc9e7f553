// The export workers of the HTTP server: each export streams from its own thread through a
// bounded chunk queue (ExportPipe) to its session.
#include <algorithm>
#include <atomic>
#include <list>
#include <mutex>
#include <thread>

#include "billing/export.h"
#include "http/server_impl.h"

namespace stickmeter::http {

bool Server::Impl::StartExport(const billing::ResolvedExport& job, std::shared_ptr<ExportPipe> pipe,
                               const boost::asio::ip::address& client) {
  std::lock_guard<std::mutex> lock(exports_mu);
  for (auto it = exports.begin(); it != exports.end();) {
    if (it->finished->load()) {
      it->thread.join();
      it = exports.erase(it);
    } else {
      ++it;
    }
  }
  if (exports.size() >= options.max_concurrent_exports) return false;
  const boost::asio::ip::address key = ClientKey(client);
  if (options.max_exports_per_client != 0 &&
      static_cast<size_t>(std::count_if(exports.begin(), exports.end(), [&](const ExportWorker& w) {
        return w.client == key;
      })) >= options.max_exports_per_client) {
    return false;
  }
  auto finished = std::make_shared<std::atomic<bool>>(false);
  tsdb::QueryService* store_ptr = &store;
  std::thread worker([store_ptr, job, pipe, finished] {
    std::string sha;
    Status status = billing::StreamExport(
        *store_ptr, job,
        [&pipe](std::string_view chunk) {
          std::unique_lock<std::mutex> lock(pipe->mu);
          pipe->cv.wait(
              lock, [&] { return pipe->cancelled || pipe->chunks.size() < kExportQueueChunks; });
          if (pipe->cancelled) return false;
          pipe->chunks.emplace_back(chunk);
          std::function<void()> notify = pipe->notify;
          lock.unlock();
          if (notify) notify();
          return true;
        },
        &sha);
    std::function<void()> notify;
    {
      std::lock_guard<std::mutex> lock(pipe->mu);
      pipe->done = true;
      pipe->status = status;
      pipe->sha256 = sha;
      // Drop the pipe's reference to the session even if the session gave up early, so a
      // closed connection is released now rather than when this worker is reaped.
      notify = std::move(pipe->notify);
      pipe->notify = nullptr;
    }
    // The export's slot is free before the session can send the body's end: a client that asks
    // for its next export as soon as it has this one's last byte is not refused as over its
    // limit. What is left of this thread takes no lock a new export waits for.
    finished->store(true);
    if (notify) notify();
  });
  exports.push_back(ExportWorker{std::move(worker), pipe, finished, key});
  return true;
}

void Server::Impl::ReapExports(bool all) {
  std::list<ExportWorker> to_join;
  {
    std::lock_guard<std::mutex> lock(exports_mu);
    for (auto it = exports.begin(); it != exports.end();) {
      if (all || it->finished->load()) {
        if (all) {
          std::lock_guard<std::mutex> pipe_lock(it->pipe->mu);
          it->pipe->cancelled = true;
          it->pipe->notify = nullptr;
          it->pipe->cv.notify_all();
        }
        to_join.splice(to_join.end(), exports, it++);
      } else {
        ++it;
      }
    }
  }
  for (auto& w : to_join) w.thread.join();
}

}  // namespace stickmeter::http
