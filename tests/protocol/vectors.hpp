// Loads the frames captured from the Node reference (tests/data/vectors.json)
// for the protocol tests.
#pragma once

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace many_level_test {

struct Frame {
  std::string scenario;
  bool from_guest = true;
  std::string payload;  // tag byte, then the message
};

inline std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

inline std::string to_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

inline std::vector<Frame> load_frames() {
  std::ifstream file(MANY_LEVEL_TEST_DATA_DIR "/vectors.json");
  if (!file) throw std::runtime_error("cannot open vectors.json");
  const auto json = nlohmann::json::parse(file);
  std::vector<Frame> frames;
  auto add = [&](const std::string& name, const nlohmann::json& exchange) {
    for (const auto& hex : exchange.at("guest_to_host")) {
      frames.push_back({name, true, from_hex(hex.get<std::string>())});
    }
    for (const auto& hex : exchange.at("host_to_guest")) {
      frames.push_back({name, false, from_hex(hex.get<std::string>())});
    }
  };
  for (const auto& scenario : json.at("scenarios")) add(scenario.at("name"), scenario);
  for (const auto& scenario : json.at("retry_scenarios")) {
    for (const auto& connection : scenario.at("connections")) add(scenario.at("name"), connection);
  }
  return frames;
}

}  // namespace many_level_test
