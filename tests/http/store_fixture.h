// A real tsdb::Store in a temporary directory with a TestServer on it, for the http tests that
// run against the store: OpenStore() in SetUp, then Commit() what the test needs and Serve();
// TearDown stops the server, closes the store and removes the directory.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "http/server.h"
#include "tests/http/test_server.h"
#include "tests/support/status_matchers.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/store.h"

namespace stickmeter::http::testing {

class RealStoreTest : public ::testing::Test {
 protected:
  // Opens an empty store (without fsync) under a new directory /tmp/<prefix>-XXXXXX.
  void OpenStore(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    dir_ = ::mkdtemp(tmpl.data());
    tsdb::StoreOptions options;
    options.path = dir_ + "/db";
    options.sync_writes = false;
    auto store = tsdb::Store::Open(options);
    ASSERT_OK(store);
    store_ = std::move(store).value();
  }
  // Commits one update of one entry of `table` from `source` on `connection`.
  void CommitEntry(const std::string& source, uint64_t connection,
                   std::shared_ptr<const ingest::TableInfo> table, const std::string& key,
                   int64_t t_ms, std::vector<ingest::MetricValue> values) {
    ingest::UpdateBatch batch =
        tsdb::testing::Batch(source, connection, std::move(table), key, t_ms, {});
    batch.tables[0].entries[0].values = std::move(values);
    Commit(std::move(batch));
  }

  // Submits `batch` and waits for its durable commit.
  void Commit(ingest::UpdateBatch batch) {
    std::promise<Status> done;
    auto committed = done.get_future();
    ASSERT_OK(store_->Submit(std::move(batch), [&](Status s) { done.set_value(s); }));
    ASSERT_OK(committed.get());
  }
  // Writes out what is committed and starts the server on it.
  void Serve(ServerOptions options = {}) {
    store_->Flush();
    server_ = std::make_unique<TestServer>(*store_, std::move(options));
  }
  void TearDown() override {
    server_.reset();
    if (store_) {
      EXPECT_OK(store_->Close());
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::string dir_;
  std::unique_ptr<tsdb::Store> store_;
  std::unique_ptr<TestServer> server_;
};

}  // namespace stickmeter::http::testing
