// The Router's device labels (router.h): an owner's `device_label` message (a device's name
// and room for the flat's pages, kept in the store), and the labels the store holds applied
// to the flats' browsers (at start, at each poll that finds the accounts changed, at once
// after a change here).
#include <map>

#include "cloud-server/router.h"
#include "common/log.h"
#include "common/utf8.h"

namespace flatlink::cloud {
namespace {

constexpr size_t kMaxLabelChars = 64;

std::string trimmed(const std::string& text) {
  const size_t first = text.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

// Why a name or room (already trimmed) cannot be one;
// "" when it can.
std::string label_problem(const std::string& text, const char* what) {
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++chars) {
    const auto c = static_cast<unsigned char>(text[i]);
    // C0 controls and DEL; C1 controls (U+0080..U+009F, encoded C2 80..C2 9F).
    if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0)) {
      return std::string(what) + ": no control characters";
    }
    const size_t len = utf8::sequence_length(text, i);
    if (len == 0) return std::string(what) + ": not UTF-8";
    i += len;
  }
  if (chars > kMaxLabelChars) {
    return std::string(what) + ": at most " + std::to_string(kMaxLabelChars) + " characters, got " + std::to_string(chars);
  }
  return {};
}

std::string label_frame(const std::string& id, const std::string& device, const std::string& name,
                        const std::string& room) {
  Json j = {{"type", "device_label"}, {"device", device}, {"name", name}, {"room", room}};
  if (!id.empty()) j["id"] = id;
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string error_frame(const std::string& id, const std::string& code, const std::string& message) {
  Json j = {{"type", "error"}, {"code", code}, {"message", message}};
  if (!id.empty()) j["id"] = id;
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

void Router::apply_labels(const std::vector<store::DeviceLabelRow>& rows) {
  std::map<std::string, std::map<std::string, DeviceLabel>> by_flat;
  for (const auto& row : rows) by_flat[row.flat][row.device] = {row.name, row.room};
  static const std::map<std::string, DeviceLabel> kNone;
  for (const auto& [id, flat] : flats_.all()) {
    auto it = by_flat.find(id);
    if (flats_.set_labels(*flat, it == by_flat.end() ? kNone : it->second)) flats_.send_devices(*flat);
  }
}

void Router::on_device_label(Peer& peer, const LiveFlat& flat, const proto::DeviceLabelRequest& request) {
  auto it = who_.find(&peer);
  const std::string user = it == who_.end() ? "" : it->second.user;
  const std::string id = request.id;
  const auto refuse = [&](const std::string& code, const std::string& message) {
    send_to_browser(metrics_, peer, error_frame(id, code, message));
  };
  if (!store_ || !store_accounts_) return refuse("unavailable", "device names and rooms need the cloud's store");
  const auto role = store_accounts_->role(flat.id(), user);
  if (!role || *role != store::Role::owner) {
    ++metrics_.refused_messages;
    LOG_INFO("router") << "flat=" << flat.id() << " user=" << log::q(user) << " device=" << log::q(request.device)
                       << " label refused: not an owner";
    return refuse("forbidden", "only an owner of the flat may rename its devices or set their rooms");
  }
  if (!flat.devices.count(request.device)) {
    LOG_INFO("router") << "flat=" << flat.id() << " user=" << log::q(user) << " device=" << log::q(request.device)
                       << " label refused: no such device in the flat";
    return refuse("unknown_device", "no device " + request.device + " in this flat (as its gateway reports them)");
  }
  const std::string name = trimmed(request.name), room = trimmed(request.room);
  for (const auto& problem : {label_problem(name, "name"), label_problem(room, "room")}) {
    if (problem.empty()) continue;
    LOG_INFO("router") << "flat=" << flat.id() << " user=" << log::q(user) << " device=" << log::q(request.device)
                       << " label refused: " << problem;
    return refuse("bad_label", problem);
  }
  if (!store_reachable_) return refuse("unavailable", "the store is unreachable; try again");
  const store::DeviceLabelRow wanted{flat.id(), request.device, name, room, user, clock_.wall_ms()};
  std::weak_ptr<int> alive = alive_;
  Peer* p = &peer;
  struct Answer {
    bool reachable = false;
    bool stored = false;
    std::vector<store::DeviceLabelRow> all;
  };
  const bool queued = store_->call<Answer>(
      [wanted](store::Database* db) {
        Answer a;
        if (!db) return a;
        a.reachable = true;
        a.stored = store::set_device_label(*db, wanted);
        a.all = store::device_labels(*db);
        return a;
      },
      [this, alive, p, wanted, id](Answer a) {
        if (alive.expired()) return;
        if (a.reachable && a.stored) {
          apply_labels(a.all);  // here at once; other instances at their next poll
          LOG_INFO("router") << "flat=" << wanted.flat << " user=" << log::q(wanted.by) << " device="
                             << log::q(wanted.device) << " label name=" << log::q(wanted.name)
                             << " room=" << log::q(wanted.room);
          record({0, wanted.flat, 0, "admin", wanted.device, wanted.by,
                  {{"label", {{"name", wanted.name}, {"room", wanted.room}}}}, "", ""});
        }
        if (!flats_.flat_of_browser(*p)) return;  // the browser left
        if (!a.reachable) {
          send_to_browser(metrics_, *p, error_frame(id, "unavailable", "the store is unreachable; try again"));
        } else if (!a.stored) {
          send_to_browser(metrics_, *p, error_frame(id, "unavailable", "the flat is not in the store (removed?)"));
        } else {
          send_to_browser(metrics_, *p, label_frame(id, wanted.device, wanted.name, wanted.room));
        }
      });
  if (!queued) refuse("unavailable", "the store is busy; try again");
}

}  // namespace flatlink::cloud
