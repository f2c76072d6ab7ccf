// Topic patterns with named wildcards.
#include "device-adapters/mqtt/topic_pattern.h"

namespace flatlink::adapters::mqtt {

std::vector<std::string_view> split_topic(std::string_view topic) {
  std::vector<std::string_view> levels;
  size_t start = 0;
  for (;;) {
    const size_t slash = topic.find('/', start);
    if (slash == std::string_view::npos) {
      levels.push_back(topic.substr(start));
      return levels;
    }
    levels.push_back(topic.substr(start, slash - start));
    start = slash + 1;
  }
}

TopicPattern::TopicPattern(std::string_view text) : text_(text) {
  for (std::string_view level : split_topic(text)) {
    if (level.size() >= 3 && level.front() == '{' && level.back() == '}') {
      levels_.push_back(Level{std::string(level.substr(1, level.size() - 2)), true});
    } else {
      levels_.push_back(Level{std::string(level), false});
    }
  }
}

std::string TopicPattern::filter() const {
  std::string out;
  for (size_t i = 0; i < levels_.size(); ++i) {
    if (i) out += '/';
    out += levels_[i].wildcard ? std::string("+") : levels_[i].text;
  }
  return out;
}

bool TopicPattern::match(std::string_view topic, Captures& captures) const {
  const std::vector<std::string_view> levels = split_topic(topic);
  if (levels.size() != levels_.size()) return false;
  Captures found;
  for (size_t i = 0; i < levels.size(); ++i) {
    if (levels_[i].wildcard) {
      if (levels[i].empty()) return false;
      found[levels_[i].text] = std::string(levels[i]);
    } else if (levels[i] != levels_[i].text) {
      return false;
    }
  }
  captures = std::move(found);
  return true;
}

std::string TopicPattern::expand(const Captures& values) const {
  std::string out;
  for (size_t i = 0; i < levels_.size(); ++i) {
    if (i) out += '/';
    if (!levels_[i].wildcard) {
      out += levels_[i].text;
    } else if (auto it = values.find(levels_[i].text); it != values.end()) {
      out += it->second;
    }
  }
  return out;
}

}  // namespace flatlink::adapters::mqtt
