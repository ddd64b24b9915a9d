// `many-level watch`: follows a host's change feed (the extension's watch),
// printing every operation as its commit arrives, one line each, flushed at
// once, until SIGINT or SIGTERM. A Node host has no change feed.
#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "guest_connection.hpp"
#include "many_level.hpp"

namespace cli {
namespace {

using namespace many_level;

// Whether `text` is valid UTF-8, so that it can be a JSON string as it is.
bool valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    size_t length = byte < 0x80 ? 1 : (byte >> 5) == 0x6 ? 2 : (byte >> 4) == 0xe ? 3 : (byte >> 3) == 0x1e ? 4 : 0;
    if (length == 0 || i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

std::string hex(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    out += digits[static_cast<unsigned char>(c) >> 4];
    out += digits[static_cast<unsigned char>(c) & 0xf];
  }
  return out;
}

// One operation as a line. Text: SEQ<TAB>put<TAB>KEY<TAB>VALUE or
// SEQ<TAB>del<TAB>KEY, the bytes as ls prints them. JSON: an object a line;
// a key or value that is not UTF-8 text (binary, in the utf8 encoding)
// becomes "key_hex" / "value_hex" instead, since a JSON string cannot hold it.
std::string line_of(uint64_t seq, const BatchOperation& op, bool json) {
  const bool put = op.type == BatchOperation::Type::put;
  if (!json) {
    std::string line = std::to_string(seq) + (put ? "\tput\t" : "\tdel\t") + op.key;
    if (put) line += "\t" + op.value;
    return line + "\n";
  }
  nlohmann::ordered_json object = {{"seq", seq}, {"type", put ? "put" : "del"}};
  const auto add = [&](const char* name, const std::string& bytes) {
    if (valid_utf8(bytes)) {
      object[name] = bytes;
    } else {
      object[std::string(name) + "_hex"] = hex(bytes);
    }
  };
  add("key", op.key);
  if (put) add("value", op.value);
  return object.dump() + "\n";
}

// What ends the command: a signal, the watch's error, or stdout closing.
struct Ending {
  std::mutex mutex;
  std::condition_variable changed;
  bool signalled = false;
  bool output_closed = false;
  std::optional<Error> error;

  bool ended() const { return signalled || output_closed || error; }
};

Args parse(const std::vector<std::string>& words) {
  std::set<std::string> with_value = guest_value_options;
  with_value.insert({"gt", "gte", "lt", "lte", "since"});
  std::set<std::string> flags = guest_flags;
  flags.insert("json");
  Args args(words, with_value, flags);
  if (!args.positional().empty()) throw UsageError("watch takes no argument '" + args.positional().front() + "'");
  if (auto since = args.number("since"); since && *since < 0) throw UsageError("--since must be 0 or more");
  check_guest_options(args);
  return args;
}

// Why the watch ended, for a person. `extension`: whether the host spoke
// the extension at all (a C++ host without a feed is not a Node host).
std::string explain(const Error& error, const Args& args, uint64_t seq, HostExtension extension) {
  if (error.is(codes::not_supported)) {
    if (extension == HostExtension::available) {
      return "the host has no change feed: its database keeps none (a relay, serve --upstream?)";
    }
    return "the host has no change feed (a Node many-level host?)";
  }
  if (error.is(codes::watch_too_old)) {
    if (args.has("since")) {
      return "the host's history does not hold the commits after seq " + *args.value("since") +
             " (LEVEL_WATCH_TOO_OLD): read what you need again, then watch without --since";
    }
    return "this watch fell behind the host's history (LEVEL_WATCH_TOO_OLD): read what you need again, then watch again";
  }
  if (error.is(codes::connection_lost)) {
    return "lost the connection to the host (LEVEL_CONNECTION_LOST); resume with --since " + std::to_string(seq);
  }
  return error.what();
}

}  // namespace

int watch(const std::vector<std::string>& words) {
  // SIGINT and SIGTERM are taken by sigwait below; blocked before any thread
  // starts so that every thread inherits the mask. A background job of a
  // script starts with SIGINT ignored: default it, so it can be waited for.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  ::signal(SIGINT, SIG_DFL);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  try {
    Args args = parse(words);
    auto ending = std::make_shared<Ending>();
    std::thread([signals, ending] {
      int signal = 0;
      if (sigwait(&signals, &signal) != 0) return;
      std::lock_guard<std::mutex> lock(ending->mutex);
      ending->signalled = true;
      ending->changed.notify_all();
    }).detach();

    GuestConnection host(args);
    if (!host.connect()) return exit_failure;

    WatchOptions options;
    options.gt = args.value("gt");
    options.gte = args.value("gte");
    options.lt = args.value("lt");
    options.lte = args.value("lte");
    if (auto since = args.number("since")) options.since = static_cast<uint64_t>(*since);
    const bool json = args.has("json");

    // Calls of one watch never overlap: the callback writes alone.
    auto watch = host.database().watch(options, [ending, json](std::optional<Error> error, const Commit& commit) {
      if (error) {
        std::lock_guard<std::mutex> lock(ending->mutex);
        if (!ending->error) ending->error = std::move(error);
        ending->changed.notify_all();
        return;
      }
      std::string lines;
      for (const auto& op : commit.operations) lines += line_of(commit.seq, op, json);
      std::cout << lines << std::flush;
      if (!std::cout) {  // the reader went away (a closed pipe): nothing left to do
        std::lock_guard<std::mutex> lock(ending->mutex);
        ending->output_closed = true;
        ending->changed.notify_all();
      }
    });

    std::unique_lock<std::mutex> lock(ending->mutex);
    ending->changed.wait(lock, [&] { return ending->ended(); });
    const bool stopped = ending->signalled || ending->output_closed;
    const std::optional<Error> error = ending->error;
    lock.unlock();
    const uint64_t seq = watch->seq();
    watch->close();
    if (stopped || !error) return exit_ok;
    std::cerr << "many-level watch: " << explain(*error, args, seq, host.guest().host_extension()) << "\n";
    return exit_failure;
  } catch (const UsageError& e) {
    std::cerr << "many-level watch: " << e.what() << " (see many-level --help)\n";
    return exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "many-level watch: " << e.what() << "\n";
    return exit_failure;
  }
}

}  // namespace cli
