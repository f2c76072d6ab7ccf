// The cloud's admin command.
#include "cloud-server/admin.h"

#include <openssl/rand.h>

#include <chrono>
#include <ctime>
#include <iostream>

#include "cloud-server/auth.h"
#include "cloud-server/pairing.h"
#include "cloud-server/store/store.h"
#include "cloud-server/store/store_pairing.h"
#include "cloud-server/store/store_events.h"
#include "cloud-server/store/store_sessions.h"
#include "cloud-server/store/store_webhooks.h"
#include "cloud-server/webhooks.h"
#include "common/device_model.h"

namespace flatlink::cloud {

const char* const kAdminUsage =
    "flatlink-cloud [--config PATH] admin COMMAND (the store the config's `store` section names):\n"
    "  flat add ID NAME | flat list | flat remove ID\n"
    "  gateway add FLAT (prints the new token once) | gateway rotate FLAT | gateway revoke FLAT\n"
    "  user add NAME [operator] | user passwd NAME | user remove NAME | user list   (passwords from stdin)\n"
    "  member add FLAT USER ROLE [EXPIRES_MS] | member role FLAT USER ROLE | member remove FLAT USER\n"
    "  member list [FLAT]                                             (ROLE: owner, member or guest)\n"
    "  pair-code FLAT [SECONDS]        (prints a one-time code for `flatlinkd pair`; default 900 s)\n"
    "  webhook set FLAT URL [EVENTS]   (EVENTS: comma-separated door_unlocked,device_offline,gateway_offline,\n"
    "                                   all by default; prints the signing secret once for a new webhook)\n"
    "  webhook show [FLAT] | webhook remove FLAT | webhook new-secret FLAT (prints it once)\n"
    "  import                          (the config's `flats` section, once, into the store)\n"
    "  session list [USER] | session revoke ID (ID: 8+ hex digits of the list) | session revoke-user USER\n"
    "flatlink-cloud [--config PATH] migrate  (applies the schema migrations and exits)\n";

namespace {

std::string new_token() {
  unsigned char raw[32];
  RAND_bytes(raw, sizeof raw);
  static const char* digits = "0123456789abcdef";
  std::string token;
  for (unsigned char b : raw) {
    token += digits[b >> 4];
    token += digits[b & 15];
  }
  return token;
}

// An operator's change, into the flat's event log (docs/protocol.md, kinds member and admin).
void admin_event(store::Database& db, const std::string& flat, const char* kind, const std::string& user, Json detail) {
  store::EventRow row;
  row.flat = flat;
  row.ts = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
               .count();
  row.kind = kind;
  row.user = user;
  row.detail = std::move(detail);
  store::append_events(db, {row});
}

std::string iso_time(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool read_line(std::istream& in, std::string& out) {
  if (!std::getline(in, out)) return false;
  while (!out.empty() && (out.back() == '\r' || out.back() == '\n')) out.pop_back();
  return !out.empty();
}

}  // namespace

int run_migrate(const config::CloudConfig& config, std::ostream& out, std::ostream& err) {
  if (!config.store.enabled) {
    err << "flatlink-cloud: the config has no store section: nothing to migrate\n";
    return 1;
  }
  try {
    auto db = store::open_database(config.store);
    const int before = db->schema_version();
    const int after = db->migrate();
    out << "schema version " << after << (before == after ? " (already)" : " (was " + std::to_string(before) + ")")
        << "\n";
    return 0;
  } catch (const store::StoreError& e) {
    err << "flatlink-cloud: migrate: " << e.what() << "\n";
    return 1;
  }
}

int run_admin(const config::CloudConfig& config, const std::vector<std::string>& args, std::istream& in,
              std::ostream& out, std::ostream& err) {
  const auto usage = [&](const std::string& why) {
    err << "flatlink-cloud: admin: " << why << "\n" << kAdminUsage;
    return 2;
  };
  if (args.empty()) return usage("which command?");
  if (!config.store.enabled) {
    err << "flatlink-cloud: admin: the config has no store section (docs/configuration.md#store)\n";
    return 1;
  }
  const std::string& what = args[0];
  const std::string verb = args.size() > 1 ? args[1] : "";
  const auto arg = [&](size_t i) -> const std::string& {
    static const std::string none;
    return i < args.size() ? args[i] : none;
  };
  const auto need = [&](size_t n) { return args.size() == n; };
  const auto bad_id = [&](const std::string& id) { return !valid_id(id); };
  try {
    auto db = store::open_database(config.store);
    db->migrate();
    if (what == "flat") {
      if (verb == "add" && need(4)) {
        if (bad_id(arg(2))) return usage("a flat id is 1 to 64 of A-Z a-z 0-9 _ . : -");
        db->add_flat(arg(2), arg(3));
        out << "flat " << arg(2) << " added\n";
        return 0;
      }
      if (verb == "list" && need(2)) {
        for (const auto& f : db->flats()) {
          out << f.id << "\t" << f.name << "\t" << (f.gateway_token_sha256.empty() ? "no gateway" : "gateway") << "\n";
        }
        return 0;
      }
      if (verb == "remove" && need(3)) {
        if (!db->remove_flat(arg(2))) return err << "flatlink-cloud: admin: no flat " << arg(2) << "\n", 1;
        out << "flat " << arg(2) << " removed\n";
        return 0;
      }
    } else if (what == "gateway") {
      if ((verb == "add" || verb == "rotate") && need(3)) {
        const bool exists = [&] {
          for (const auto& f : db->flats()) {
            if (f.id == arg(2)) return !f.gateway_token_sha256.empty();
          }
          return false;
        }();
        if (verb == "add" && exists) {
          return err << "flatlink-cloud: admin: flat " << arg(2) << " has a gateway token; use gateway rotate\n", 1;
        }
        const std::string token = new_token();
        if (!db->set_gateway_token(arg(2), hash_token(token))) {
          return err << "flatlink-cloud: admin: no flat " << arg(2) << "\n", 1;
        }
        admin_event(*db, arg(2), "admin", "", {{"by", "admin"}, {"what", "gateway token " + std::string(verb == "add" ? "issued" : "rotated")}});
        err << "the gateway token of flat " << arg(2) << " (shown once; the store keeps only its hash):\n";
        out << token << "\n";
        return 0;
      }
      if (verb == "revoke" && need(3)) {
        if (!db->revoke_gateway(arg(2))) return err << "flatlink-cloud: admin: flat " << arg(2) << " has no gateway\n", 1;
        admin_event(*db, arg(2), "admin", "", {{"by", "admin"}, {"what", "gateway token revoked"}});
        out << "gateway of flat " << arg(2) << " revoked\n";
        return 0;
      }
    } else if (what == "user") {
      if (verb == "add" && (need(3) || (need(4) && arg(3) == "operator"))) {
        std::string password;
        if (!read_line(in, password)) return err << "flatlink-cloud: admin: no password on standard input\n", 1;
        db->add_user(arg(2), hash_password(password), need(4));
        out << "user " << arg(2) << " added" << (need(4) ? " (operator)" : "") << "\n";
        return 0;
      }
      if (verb == "passwd" && need(3)) {
        std::string password;
        if (!read_line(in, password)) return err << "flatlink-cloud: admin: no password on standard input\n", 1;
        if (!db->set_password(arg(2), hash_password(password))) {
          return err << "flatlink-cloud: admin: no user " << arg(2) << "\n", 1;
        }
        out << "password of " << arg(2) << " changed; their sessions ended\n";
        return 0;
      }
      if (verb == "remove" && need(3)) {
        if (!db->remove_user(arg(2))) return err << "flatlink-cloud: admin: no user " << arg(2) << "\n", 1;
        out << "user " << arg(2) << " removed\n";
        return 0;
      }
      if (verb == "list" && need(2)) {
        for (const auto& u : db->users()) out << u.name << (u.is_operator ? "\toperator" : "") << "\n";
        return 0;
      }
    } else if (what == "member") {
      if ((verb == "add" || verb == "role") && (need(5) || (verb == "add" && need(6)))) {
        const auto role = store::role_from(arg(4));
        if (!role) return usage("a role is owner, member or guest");
        int64_t expires = 0;
        if (need(6)) {
          try {
            expires = std::stoll(arg(5));
          } catch (const std::exception&) {
            return usage("EXPIRES_MS is milliseconds since the epoch");
          }
        }
        if (verb == "role") {
          bool found = false;
          for (const auto& m : db->members(arg(2))) {
            if (m.user == arg(3)) {
              found = true;
              expires = m.expires;
            }
          }
          if (!found) return err << "flatlink-cloud: admin: " << arg(3) << " is no member of " << arg(2) << "\n", 1;
        }
        if (!db->set_member(arg(2), arg(3), *role, expires)) {
          return err << "flatlink-cloud: admin: no flat " << arg(2) << " or no user " << arg(3) << "\n", 1;
        }
        admin_event(*db, arg(2), "member", arg(3), {{"by", "admin"}, {"role", std::string(store::to_string(*role))}});
        out << arg(3) << " is " << store::to_string(*role) << " of " << arg(2) << "\n";
        return 0;
      }
      if (verb == "remove" && need(4)) {
        if (!db->remove_member(arg(2), arg(3))) {
          return err << "flatlink-cloud: admin: " << arg(3) << " is no member of " << arg(2) << "\n", 1;
        }
        admin_event(*db, arg(2), "member", arg(3), {{"by", "admin"}, {"role", nullptr}});
        out << arg(3) << " removed from " << arg(2) << "\n";
        return 0;
      }
      if (verb == "list" && (need(2) || need(3))) {
        for (const auto& m : db->members(arg(2))) {
          out << m.flat << "\t" << m.user << "\t" << store::to_string(m.role);
          if (m.expires) out << "\texpires " << m.expires;
          out << "\n";
        }
        return 0;
      }
    } else if (what == "pair-code" && (need(2) || need(3))) {
      int64_t seconds = kPairCodeDefaultSeconds;
      if (need(3)) {
        try {
          size_t used = 0;
          seconds = std::stoll(arg(2), &used);
          if (used != arg(2).size()) seconds = 0;
        } catch (const std::exception&) {
          seconds = 0;
        }
        if (seconds < 1 || seconds > 7 * 24 * 3600) return usage("SECONDS is 1 to 604800");
      }
      const std::string code = new_pairing_code();
      const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      if (!store::add_pairing_code(*db, arg(1), hash_token(normalize_pairing_code(code)), now + seconds * 1000)) {
        return err << "flatlink-cloud: admin: no flat " << arg(1) << "\n", 1;
      }
      err << "a pairing code for flat " << arg(1) << ", valid once for " << seconds
          << " s; on the gateway: flatlinkd pair https://THIS-CLOUD " << code << "\n";
      out << code << "\n";
      return 0;
    } else if (what == "session") {
      if (verb == "list" && (need(2) || need(3))) {
        for (const auto& row : store::list_sessions(*db, arg(2))) {
          out << row.token_sha256.substr(0, 12) << "\t" << row.user << "\t" << row.flat << "\tlast used "
              << iso_time(row.last_used) << "\texpires " << iso_time(row.expires) << "\t" << row.client << "\n";
        }
        return 0;
      }
      if (verb == "revoke" && need(3)) {
        const int n = store::end_session_by_prefix(*db, arg(2));
        if (n < 0) return err << "flatlink-cloud: admin: " << arg(2) << " matches several sessions; give more digits\n", 1;
        if (n == 0) return err << "flatlink-cloud: admin: no session " << arg(2) << "\n", 1;
        out << "session " << arg(2) << " revoked; its links close within a second\n";
        return 0;
      }
      if (verb == "revoke-user" && need(3)) {
        out << store::end_user_sessions(*db, arg(2)) << " sessions of " << arg(2) << " revoked\n";
        return 0;
      }
    } else if (what == "webhook") {
      const auto now_ms = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
      };
      if (verb == "set" && (need(4) || need(5))) {
        std::string why;
        if (!parse_webhook_url(arg(3), why)) {
          err << "flatlink-cloud: admin: webhook URL refused: " << why << "\n";
          return 2;
        }
        store::WebhookRow row{arg(2), arg(3), "", {}, now_ms()};
        const std::string list = need(5) ? arg(4) : "door_unlocked,device_offline,gateway_offline";
        size_t start = 0;
        while (start <= list.size()) {
          const size_t comma = list.find(',', start);
          const std::string e = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
          if (!valid_webhook_event(e)) return usage("unknown event " + e + " (door_unlocked, device_offline, gateway_offline)");
          row.events.push_back(e);
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
        const auto before = store::webhook(*db, row.flat);
        row.secret = before ? before->secret : new_webhook_secret();
        if (!store::set_webhook(*db, row)) {
          err << "flatlink-cloud: admin: no flat " << row.flat << "\n";
          return 1;
        }
        admin_event(*db, row.flat, "admin", "", {{"webhook", "set"}});
        out << "webhook of flat " << row.flat << " set\n";
        if (!before) out << "signing secret (shown once; the receiver checks X-Flatlink-Signature with it): " << row.secret << "\n";
        return 0;
      }
      if (verb == "new-secret" && need(3)) {
        auto row = store::webhook(*db, arg(2));
        if (!row) {
          err << "flatlink-cloud: admin: flat " << arg(2) << " has no webhook\n";
          return 1;
        }
        row->secret = new_webhook_secret();
        row->updated = now_ms();
        store::set_webhook(*db, *row);
        admin_event(*db, row->flat, "admin", "", {{"webhook", "new-secret"}});
        out << "signing secret of flat " << row->flat << " (shown once): " << row->secret << "\n";
        return 0;
      }
      if (verb == "remove" && need(3)) {
        if (!store::remove_webhook(*db, arg(2))) {
          err << "flatlink-cloud: admin: flat " << arg(2) << " has no webhook\n";
          return 1;
        }
        admin_event(*db, arg(2), "admin", "", {{"webhook", "clear"}});
        out << "webhook of flat " << arg(2) << " removed\n";
        return 0;
      }
      if (verb == "show" && (need(2) || need(3))) {
        for (const auto& row : store::webhooks(*db)) {
          if (need(3) && row.flat != arg(2)) continue;
          std::string events;
          for (const auto& e : row.events) events += (events.empty() ? "" : ",") + e;
          out << row.flat << " " << row.url << " " << (events.empty() ? "-" : events) << "\n";  // never the secret
        }
        return 0;
      }
    } else if (what == "import" && need(1)) {
      if (config.flats.empty()) return err << "flatlink-cloud: admin: the config has no flats to import\n", 1;
      out << db->import_flats(config.flats) << "\n";
      return 0;
    }
  } catch (const store::StoreError& e) {
    err << "flatlink-cloud: admin: " << e.what() << "\n";
    return 1;
  }
  return usage("unknown command or wrong arguments");
}

}  // namespace flatlink::cloud
