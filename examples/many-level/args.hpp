// A small command-line parser for the many-level program: `--name value`,
// `--name=value`, repeatable options and flags, and positional arguments,
// with a usage error for anything it was not told about.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace cli {

// Thrown for a command line that does not fit: the program prints it with
// the command's usage and exits with status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  // `with_value` names the options that take a value; `flags` those that do not.
  Args(const std::vector<std::string>& words, const std::set<std::string>& with_value,
       const std::set<std::string>& flags) {
    bool options_done = false;
    for (size_t i = 0; i < words.size(); ++i) {
      const std::string& word = words[i];
      if (options_done || word.size() < 3 || word.compare(0, 2, "--") != 0) {
        if (word == "--") {
          options_done = true;
          continue;
        }
        positional_.push_back(word);
        continue;
      }
      std::string name = word.substr(2);
      std::optional<std::string> value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
      }
      if (with_value.count(name)) {
        if (!value) {
          if (i + 1 >= words.size()) throw UsageError("--" + name + " needs a value");
          value = words[++i];
        }
        values_[name].push_back(*value);
      } else if (flags.count(name)) {
        if (value) throw UsageError("--" + name + " takes no value");
        values_[name].push_back("");
      } else {
        throw UsageError("unknown option --" + name);
      }
    }
  }

  bool has(const std::string& name) const { return values_.count(name) > 0; }

  // The last value given for an option, if any.
  std::optional<std::string> value(const std::string& name) const {
    auto found = values_.find(name);
    if (found == values_.end()) return std::nullopt;
    return found->second.back();
  }

  std::string value_or(const std::string& name, const std::string& fallback) const {
    return value(name).value_or(fallback);
  }

  std::vector<std::string> values(const std::string& name) const {
    auto found = values_.find(name);
    return found == values_.end() ? std::vector<std::string>{} : found->second;
  }

  // A whole number option, with a usage error for anything else.
  std::optional<long long> number(const std::string& name) const {
    auto text = value(name);
    if (!text) return std::nullopt;
    size_t used = 0;
    long long result = 0;
    try {
      result = std::stoll(*text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text->size()) throw UsageError("--" + name + " takes a whole number, got '" + *text + "'");
    return result;
  }

  const std::vector<std::string>& positional() const { return positional_; }

  // Exactly `count` positional arguments, named in `what` for the message.
  void expect_positional(size_t count, const std::string& what) const {
    if (positional_.size() != count) throw UsageError("expected " + what);
  }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

}  // namespace cli
