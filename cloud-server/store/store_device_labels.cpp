// The owners' device names and rooms in the store (store_device_labels.h): one SQL on both engines.
#include "cloud-server/store/store_device_labels.h"

namespace flatlink::cloud::store {
namespace {

DeviceLabelRow from_row(const Row& r) {
  const auto text = [&](size_t i) { return r.at(i) ? *r[i] : std::string(); };
  DeviceLabelRow row;
  row.flat = text(0);
  row.device = text(1);
  row.name = text(2);
  row.room = text(3);
  row.by = text(4);
  row.updated = r.at(5) ? std::stoll(*r[5]) : 0;
  return row;
}

constexpr const char* kColumns = "SELECT flat, device, name, room, by_user, updated FROM device_labels";

}  // namespace

bool set_device_label(Database& db, const DeviceLabelRow& row) {
  auto& c = db.connection();
  Transaction tx(c);
  if (c.query("SELECT 1 FROM flats WHERE id = ?", {row.flat}).empty()) return false;
  if (row.name.empty() && row.room.empty()) {
    c.query("DELETE FROM device_labels WHERE flat = ? AND device = ?", {row.flat, row.device});
  } else {
    c.query("INSERT INTO device_labels (flat, device, name, room, by_user, updated) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (flat, device) DO UPDATE SET name = excluded.name, room = excluded.room,"
            " by_user = excluded.by_user, updated = excluded.updated",
            {row.flat, row.device, row.name, row.room, row.by, row.updated});
  }
  c.query("UPDATE accounts_version SET version = version + 1 WHERE id = 1");
  tx.commit();
  return true;
}

std::optional<DeviceLabelRow> device_label(Database& db, const std::string& flat, const std::string& device) {
  const auto rows = db.connection().query(std::string(kColumns) + " WHERE flat = ? AND device = ?", {flat, device});
  if (rows.empty()) return std::nullopt;
  return from_row(rows[0]);
}

std::vector<DeviceLabelRow> device_labels(Database& db) {
  std::vector<DeviceLabelRow> out;
  for (const auto& r : db.connection().query(std::string(kColumns) + " ORDER BY flat, device")) out.push_back(from_row(r));
  return out;
}

}  // namespace flatlink::cloud::store
