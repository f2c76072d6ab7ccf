// The flats' webhooks in the store: one SQL on both engines (table webhooks, migration
// "webhooks" in database.cpp). The events are kept as a comma-separated list.
#include "cloud-server/store/store_webhooks.h"

namespace flatlink::cloud::store {
namespace {

std::string join(const std::vector<std::string>& list) {
  std::string out;
  for (const auto& item : list) out += (out.empty() ? "" : ",") + item;
  return out;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

WebhookRow from_row(const Row& r) {
  WebhookRow row;
  row.flat = r.at(0) ? *r[0] : "";
  row.url = r.at(1) ? *r[1] : "";
  row.secret = r.at(2) ? *r[2] : "";
  row.events = split(r.at(3) ? *r[3] : "");
  row.updated = r.at(4) ? std::stoll(*r[4]) : 0;
  return row;
}

}  // namespace

bool set_webhook(Database& db, const WebhookRow& row) {
  auto& c = db.connection();
  Transaction tx(c);
  if (c.query("SELECT 1 FROM flats WHERE id = ?", {row.flat}).empty()) return false;
  c.query("INSERT INTO webhooks (flat, url, secret, events, updated) VALUES (?, ?, ?, ?, ?)"
          " ON CONFLICT (flat) DO UPDATE SET url = excluded.url, secret = excluded.secret,"
          " events = excluded.events, updated = excluded.updated",
          {row.flat, row.url, row.secret, join(row.events), row.updated});
  c.query("UPDATE accounts_version SET version = version + 1 WHERE id = 1");
  tx.commit();
  return true;
}

bool remove_webhook(Database& db, const std::string& flat) {
  auto& c = db.connection();
  Transaction tx(c);
  c.query("DELETE FROM webhooks WHERE flat = ?", {flat});
  const bool removed = c.changes() == 1;
  if (removed) c.query("UPDATE accounts_version SET version = version + 1 WHERE id = 1");
  tx.commit();
  return removed;
}

std::optional<WebhookRow> webhook(Database& db, const std::string& flat) {
  const auto rows =
      db.connection().query("SELECT flat, url, secret, events, updated FROM webhooks WHERE flat = ?", {flat});
  if (rows.empty()) return std::nullopt;
  return from_row(rows[0]);
}

std::vector<WebhookRow> webhooks(Database& db) {
  std::vector<WebhookRow> out;
  for (const auto& r : db.connection().query("SELECT flat, url, secret, events, updated FROM webhooks ORDER BY flat")) {
    out.push_back(from_row(r));
  }
  return out;
}

}  // namespace flatlink::cloud::store
