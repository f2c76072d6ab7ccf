// Topic patterns with named wildcards, e.g. "tele/{device}/STATE": the MQTT
// subscription filter they stand for, matching a topic, and filling one in.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace flatlink::adapters::mqtt {

using Captures = std::map<std::string, std::string, std::less<>>;

class TopicPattern {
 public:
  TopicPattern() = default;
  // The text is checked by the config loader: levels are literals or "{name}".
  explicit TopicPattern(std::string_view text);

  const std::string& text() const { return text_; }
  // "tele/+/STATE".
  std::string filter() const;
  // Whether topic fits; each named wildcard captures one non-empty level.
  bool match(std::string_view topic, Captures& captures) const;
  // The pattern with each "{name}" replaced from values (missing ones stay empty).
  std::string expand(const Captures& values) const;

 private:
  struct Level {
    std::string text;  // literal, or the wildcard's name
    bool wildcard = false;
  };
  std::string text_;
  std::vector<Level> levels_;
};

// "a/b/c" -> {"a", "b", "c"}; empty levels stay.
std::vector<std::string_view> split_topic(std::string_view topic);

}  // namespace flatlink::adapters::mqtt
