#include "app/billing_zone.h"

namespace stickmeter::app {

Status RememberBillingZone(tsdb::Store& store, const std::string& zone, int64_t now_ms) {
  auto stored = StoredBillingZone(store);
  if (!stored.ok()) return stored.status();
  // An unchanged zone is not written again: the history then lists real changes only.
  if (*stored == zone) return Status::Ok();
  return store.WriteSetting(kBillingZoneSetting, zone, now_ms);
}

Result<std::string> StoredBillingZone(tsdb::Store& store) {
  auto settings = store.Settings(kBillingZoneSetting);
  if (!settings.ok()) return settings.status();
  for (const auto& [name, value] : *settings) {
    if (name == kBillingZoneSetting) return value;
  }
  return std::string("UTC");
}

}  // namespace stickmeter::app
