// The flats' notification webhooks in the store (cloud-server/webhooks.h delivers to them):
// one per flat, its URL, the HMAC-SHA256 key its deliveries are signed with, and the events it
// wants. Set by an owner (the `webhook` message) or the admin command; every change moves the
// accounts' change counter, so that every instance reads the list again at its next poll.
// Blocking calls on one Database: the admin command's, or the store worker's (worker.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cloud-server/store/store.h"

namespace flatlink::cloud::store {

struct WebhookRow {
  std::string flat;
  std::string url;
  std::string secret;               // the HMAC key: never logged, shown once when made
  std::vector<std::string> events;  // door_unlocked, device_offline, gateway_offline
  int64_t updated = 0;              // wall ms

  bool operator==(const WebhookRow&) const = default;
};

// Adds or replaces the flat's webhook. False for an unknown flat.
bool set_webhook(Database& db, const WebhookRow& row);
// False when the flat had none.
bool remove_webhook(Database& db, const std::string& flat);
std::optional<WebhookRow> webhook(Database& db, const std::string& flat);
std::vector<WebhookRow> webhooks(Database& db);

}  // namespace flatlink::cloud::store
