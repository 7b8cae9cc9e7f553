// The billing zone kept in the store (app/billing_zone.h), against a real store: UTC until a
// zone is recorded, a change is recorded once (unchanged zones are not written again), and a
// read-only view, as `stickmeter export` opens it, reads the zone back.
#include "app/billing_zone.h"

#include <gtest/gtest.h>

#include "tests/support/process.h"
#include "tests/support/status_matchers.h"

namespace stickmeter::app {
namespace {

class BillingZoneStoreTest : public ::testing::Test {
 protected:
  tsdb::StoreOptions Options() const {
    tsdb::StoreOptions options;
    options.path = (dir_.path() / "db").string();
    options.sync_writes = false;
    return options;
  }
  stickmeter::testing::TempDir dir_{"stickmeter-billing-zone"};
};

TEST_F(BillingZoneStoreTest, RecordedOncePerChangeAndReadBackReadOnly) {
  {
    auto store = tsdb::Store::Open(Options());
    ASSERT_OK(store);
    auto fresh = StoredBillingZone(**store);
    ASSERT_OK(fresh);
    EXPECT_EQ("UTC", *fresh);
    // UTC on a fresh store is what it reads as already: nothing is written.
    ASSERT_OK(RememberBillingZone(**store, "UTC", 1000));
    ASSERT_OK(RememberBillingZone(**store, "Europe/Berlin", 2000));
    ASSERT_OK(RememberBillingZone(**store, "Europe/Berlin", 3000));
    auto history = (*store)->SettingHistory(kBillingZoneSetting, 100);
    ASSERT_OK(history);
    ASSERT_EQ(1u, history->size());
    EXPECT_EQ("Europe/Berlin", (*history)[0].value);
    EXPECT_EQ(2000, (*history)[0].t_ms);
    ASSERT_OK((*store)->Close());
  }
  auto view = tsdb::Store::OpenReadOnly(Options());
  ASSERT_OK(view);
  auto zone = StoredBillingZone(**view);
  ASSERT_OK(zone);
  EXPECT_EQ("Europe/Berlin", *zone);
}

}  // namespace
}  // namespace stickmeter::app
