// The Router's notification webhooks (router.h): the owners' `webhook` message (read, set,
// clear the flat's webhook in the store, with the same checks as `flatlink-cloud admin
// webhook`), and the door-unlocked event the flat's webhook is told of.
#include "cloud-server/router.h"
#include "common/log.h"

namespace flatlink::cloud {
namespace {

std::string webhook_frame(const std::optional<store::WebhookRow>& row, const std::string& new_secret) {
  Json j = {{"type", "webhook"}};
  if (row) {
    j["url"] = row->url;
    j["events"] = row->events;
  } else {
    j["url"] = nullptr;
    j["events"] = Json::array();
  }
  if (!new_secret.empty()) j["secret"] = new_secret;  // only in the answer to the set that made it
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

void Router::notify_unlocked(const LiveFlat& flat, const proto::StatusItem& item, bool was_unlocked) {
  const auto now = lock_unlocked(item.state);
  if (!now || !*now || was_unlocked) return;
  const proto::DeviceReport* dev = flat_device(flat.id(), item.device);
  if (!dev || dev->info.kind != "lock") return;
  webhooks_->notify(flat.id(), "door_unlocked", {{"device", item.device}, {"name", dev->info.name}});
}

void Router::on_webhook(Peer& peer, const LiveFlat& flat, const proto::WebhookRequest& request) {
  auto it = who_.find(&peer);
  const std::string user = it == who_.end() ? "" : it->second.user;
  const auto refuse = [&](const std::string& code, const std::string& message) {
    send_to_browser(metrics_, peer, proto::encode(proto::Error{code, message}));
  };
  if (!store_ || !store_accounts_ || !webhooks_) return refuse("unavailable", "webhooks need the store");
  const auto role = store_accounts_->role(flat.id(), user);
  if (!role || *role != store::Role::owner) {
    ++metrics_.refused_messages;
    LOG_INFO("router") << "flat=" << flat.id() << " user=" << log::q(user) << " webhook " << request.action
                       << " refused: not an owner";
    return refuse("forbidden", "only an owner of the flat may read or change its webhook");
  }
  if (!store_reachable_) return refuse("unavailable", "the store is unreachable; try again");
  std::string secret;
  if (request.action == "set") {
    std::string why;
    if (!parse_webhook_url(request.url, why)) {
      LOG_INFO("router") << "flat=" << flat.id() << " user=" << log::q(user) << " webhook refused: " << why;
      return refuse("bad_url", why);
    }
    secret = request.secret;
  }
  const std::string flat_id = flat.id();
  const std::string action = request.action;
  const int64_t now = clock_.wall_ms();
  const store::WebhookRow wanted{flat_id, request.url, secret, request.events, now};
  std::weak_ptr<int> alive = alive_;
  Peer* p = &peer;
  struct Answer {
    bool reachable = false;
    std::optional<store::WebhookRow> row;
    std::string new_secret;
    std::vector<store::WebhookRow> all;
  };
  const bool queued = store_->call<Answer>(
      [wanted, action](store::Database* db) {
        Answer a;
        if (!db) return a;
        a.reachable = true;
        if (action == "set") {
          store::WebhookRow row = wanted;
          if (row.secret.empty()) {
            // Kept when the flat has one; made (and shown this once) when it has none.
            auto before = store::webhook(*db, row.flat);
            if (before) {
              row.secret = before->secret;
            } else {
              row.secret = a.new_secret = new_webhook_secret();
            }
          }
          store::set_webhook(*db, row);
        } else if (action == "clear") {
          store::remove_webhook(*db, wanted.flat);
        }
        a.row = store::webhook(*db, wanted.flat);
        if (action != "get") a.all = store::webhooks(*db);
        return a;
      },
      [this, alive, p, flat_id, user, action](Answer a) {
        if (alive.expired()) return;
        if (a.reachable && action != "get") {
          if (webhooks_) webhooks_->configure(a.all);  // here at once; other instances at their next poll
          LOG_INFO("router") << "flat=" << flat_id << " user=" << log::q(user) << " webhook "
                             << (action == "set" ? "set" : "cleared");
          record({0, flat_id, 0, "admin", "", user, {{"webhook", action}}, "", ""});
        }
        if (!flats_.flat_of_browser(*p)) return;  // the browser left
        send_to_browser(metrics_, *p,
                        a.reachable ? webhook_frame(a.row, a.new_secret)
                                    : proto::encode(proto::Error{"unavailable", "the store is unreachable; try again"}));
      });
  if (!queued) refuse("unavailable", "the store is busy; try again");
}

}  // namespace flatlink::cloud
