// A Peer that keeps what it was sent, for the cloud's routing tests.
#pragma once

#include <string>
#include <vector>

#include "cloud-link/protocol.h"
#include "cloud-server/peer.h"

namespace flatlink::cloud::test_support {

class FakePeer final : public Peer {
 public:
  explicit FakePeer(std::string name) : name_(std::move(name)) {}
  void send(std::string frame) override { sent.push_back(std::move(frame)); }
  void close(uint16_t code, const std::string&) override { closed_with = code; }
  const std::string& describe() const override { return name_; }

  // The frames sent, decoded as a browser or a gateway would.
  template <class T>
  std::vector<T> browser_got() const {
    std::vector<T> out;
    for (const auto& f : sent) {
      auto d = proto::decode_from_cloud_for_browser(f);
      if (auto* m = std::get_if<proto::CloudToBrowser>(&d)) {
        if (auto* t = std::get_if<T>(m)) out.push_back(*t);
      }
    }
    return out;
  }
  template <class T>
  std::vector<T> gateway_got() const {
    std::vector<T> out;
    for (const auto& f : sent) {
      auto d = proto::decode_from_cloud_for_gateway(f);
      if (auto* m = std::get_if<proto::CloudToGateway>(&d)) {
        if (auto* t = std::get_if<T>(m)) out.push_back(*t);
      }
    }
    return out;
  }

  std::vector<std::string> sent;
  int closed_with = 0;

 private:
  std::string name_;
};

}  // namespace flatlink::cloud::test_support
