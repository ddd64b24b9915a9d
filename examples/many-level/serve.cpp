// `many-level serve`: a host over SQLite, memory, or an upstream host (a
// relay), on any number of listening addresses and/or stdin/stdout.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "access_options.hpp"
#include "args.hpp"
#include "commands.hpp"
#include "many_level.hpp"
#include "tls_options.hpp"

namespace cli {
namespace {

using namespace many_level;

struct ServeConfig {
  std::string db_path = "./many-level.db";
  bool memory = false;
  std::optional<std::string> upstream;
  bool retry = false;
  std::vector<std::string> listen;
  bool stdio = false;
  bool readonly = false;
  std::optional<std::string> prefix;
  size_t max_frame = size_t{64} << 20;
  std::optional<size_t> max_snapshots;  // unset: HostOptions' defaults
  std::optional<size_t> max_watches;
  ChangeHistoryOptions history;
  TlsFlags tls;            // --tls-*: tls_options.hpp
  TlsListeners listeners;  // loaded by serve(), before the database opens
  ServeAccess access;      // --auth, --allow-anonymous: access_options.hpp
};

// A count option that must be at least `minimum`, if given.
std::optional<size_t> count_option(const Args& args, const std::string& name, long long minimum) {
  auto number = args.number(name);
  if (!number) return std::nullopt;
  if (*number < minimum) throw UsageError("--" + name + " must be at least " + std::to_string(minimum));
  return static_cast<size_t>(*number);
}

ServeConfig parse(const std::vector<std::string>& words) {
  std::set<std::string> with_value = {"db",          "upstream",    "listen",          "prefix",       "max-frame",
                                      "max-snapshots", "max-watches", "history-commits", "history-bytes",
                                      "auth",        "allow-anonymous"};
  with_value.insert(tls_serve_value_options.begin(), tls_serve_value_options.end());
  Args args(words, with_value, {"memory", "retry", "stdio", "readonly", "tls-insecure"});
  if (!args.positional().empty()) throw UsageError("serve takes no argument '" + args.positional().front() + "'");
  ServeConfig config;
  int sources = args.has("db") + args.has("memory") + args.has("upstream");
  if (sources > 1) throw UsageError("--db, --memory and --upstream exclude each other");
  config.db_path = args.value_or("db", config.db_path);
  config.memory = args.has("memory");
  config.upstream = args.value("upstream");
  config.retry = args.has("retry");
  if (config.retry && !config.upstream) throw UsageError("--retry goes with --upstream");
  config.listen = args.values("listen");
  config.stdio = args.has("stdio");
  if (config.listen.empty() && !config.stdio) config.listen.push_back("tcp://127.0.0.1:9000");
  config.readonly = args.has("readonly");
  config.prefix = args.value("prefix");
  if (auto bytes = args.number("max-frame")) {
    if (*bytes < 16) throw UsageError("--max-frame must be at least 16 bytes");
    config.max_frame = static_cast<size_t>(*bytes);
  }
  config.max_snapshots = count_option(args, "max-snapshots", 0);
  config.max_watches = count_option(args, "max-watches", 0);
  if (auto commits = count_option(args, "history-commits", 1)) config.history.max_commits = *commits;
  if (auto bytes = count_option(args, "history-bytes", 1)) config.history.max_bytes = *bytes;
  if (config.upstream && (args.has("history-commits") || args.has("history-bytes"))) {
    // A relay's watches are the upstream host's: its history is kept there.
    throw UsageError("--history-commits and --history-bytes apply to the host's own database, not to --upstream");
  }
  for (const auto& address : config.listen) parse_address(address);  // a bad one is a usage error
  if (config.upstream) parse_address(*config.upstream);
  config.tls = TlsFlags::from(args);
  config.tls.check_serve(config.listen, config.upstream);
  std::vector<std::string> listeners = config.listen;
  if (config.stdio) listeners.push_back("stdio");
  config.access = ServeAccess(args, listeners);  // reads the token file: a bad one is a usage error
  return config;
}

// What SIGINT and SIGTERM act on; cleared (under the lock) before teardown,
// so a late signal never touches what is being destroyed.
struct Shutdown {
  std::mutex mutex;
  EventLoop* loop = nullptr;
  Database* database = nullptr;
  bool stdio_only = false;
};

Shutdown& shutdown_state() {
  static Shutdown state;
  return state;
}

void watch_signals(sigset_t signals) {
  std::thread([signals] {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) return;
    auto& state = shutdown_state();
    std::lock_guard<std::mutex> lock(state.mutex);
    log_line(std::string("received ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") + ", closing");
    if (state.stdio_only && state.database) {
      // A blocking read of stdin cannot be interrupted: close the database
      // here, which is what must not be skipped, and end the process.
      try {
        state.database->close();
      } catch (const std::exception& e) {
        log_line(std::string("closing the database failed: ") + e.what());
        std::_Exit(exit_failure);
      }
      log_line("database closed");
      std::_Exit(exit_ok);
    }
    if (state.loop) state.loop->stop();
  }).detach();
}

int serve_until_stopped(const ServeConfig& config, Database& exposed, Database* store, const std::string& description,
                        sigset_t signals);

}  // namespace

int serve(const std::vector<std::string>& words) {
  ServeConfig config;
  try {
    config = parse(words);
  } catch (const UsageError& e) {
    std::cerr << "many-level serve: " << e.what() << " (see many-level --help)\n";
    return exit_usage;
  } catch (const Error& e) {
    std::cerr << "many-level serve: " << e.message() << "\n";
    return exit_usage;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts, so all inherit it
  ::signal(SIGPIPE, SIG_IGN);

  try {
    config.listeners.load(config.tls, config.listen);  // a TLS file that cannot be used fails here
    // The database: SQLite, memory, or a guest of an upstream host.
    std::unique_ptr<Database> store;
    std::unique_ptr<Connector> upstream;
    std::string description;
    if (config.upstream) {
      GuestOptions options;
      options.retry = config.retry;
      auto guest = std::make_unique<Guest>(options);
      ConnectorOptions connector;
      connector.on_event = [](const ConnectorEvent& event) {
        if (event.kind == ConnectorEvent::Kind::connected) {
          log_line("upstream connected: " + event.address + " (connection " + std::to_string(event.connects) + ")");
        } else {
          log_line("upstream " + std::string(event.kind == ConnectorEvent::Kind::failed ? "unreachable" : "lost") +
                   ": " + event.address + ": " + event.detail + "; retrying in " +
                   std::to_string(event.next_attempt.count()) + " ms");
        }
      };
      if (parse_address(*config.upstream).tls) connector.wrap_session = guest_stream_wrapper(config.tls);
      upstream = std::make_unique<Connector>(*guest, *config.upstream, connector);
      if (!upstream->wait_connected(std::chrono::seconds(5))) {
        log_line("upstream " + *config.upstream + " not reachable yet; requests wait for it");
      }
      description = "relay of " + *config.upstream + (config.retry ? " (retry)" : "");
      store = std::move(guest);
    } else if (config.memory) {
      DatabaseOptions options;
      options.change_history = config.history;
      store = std::make_unique<MemoryDatabase>(options);
      description = "memory";
    } else {
#ifndef MANY_LEVEL_NO_SQLITE
      SqliteOptions options;
      options.change_history = config.history;
      store = std::make_unique<SqliteDatabase>(config.db_path, options);
      store->open();  // a bad path fails here, with SQLite's reason
      description = "sqlite " + config.db_path;
#else
      throw Error(codes::not_supported, "this build has no SQLite; use --memory or --upstream");
#endif
    }
    std::unique_ptr<Sublevel> sublevel;
    Database* exposed = store.get();
    if (config.prefix) {
      sublevel = std::make_unique<Sublevel>(*store, *config.prefix);
      exposed = sublevel.get();
      description += ", sublevel " + sublevel->prefix();
    }

    // The host and its connections go before the database closes.
    int status = serve_until_stopped(config, *exposed, store.get(), description, signals);
    store->close();
    log_line("database closed");
    return status;
  } catch (const Error& e) {
    log_line("error: " + std::string(e.what()));
    return exit_failure;
  } catch (const std::exception& e) {
    log_line(std::string("error: ") + e.what());
    return exit_failure;
  }
}

namespace {
int serve_until_stopped(const ServeConfig& config, Database& exposed, Database* store, const std::string& description,
                        sigset_t signals) {
    HostOptions options;
    options.readonly = config.readonly;
    options.max_frame_length = config.max_frame;
    if (config.max_snapshots) options.max_snapshots = *config.max_snapshots;
    if (config.max_watches) options.max_watches = *config.max_watches;
    options.log = [](std::string_view line) { log_line(std::string(line)); };
    Host host(exposed, options);

    EventLoop loop;
    {
      auto& state = shutdown_state();
      std::lock_guard<std::mutex> lock(state.mutex);
      state.loop = &loop;
      state.database = store;
      state.stdio_only = config.listen.empty();
    }
    watch_signals(signals);

    loop.on_connect([&loop](const ConnectionInfo& info) {
      log_line("guest connected: " + info.peer + " on " + info.local + " (#" + std::to_string(info.id) + ", " +
               std::to_string(loop.connection_count()) + " open)");
    });
    loop.on_disconnect([](const ConnectionInfo& info, const std::string& reason) {
      log_line("guest disconnected: " + info.peer + " (#" + std::to_string(info.id) + "): " + reason);
    });
    for (const auto& address : config.listen) {
      // The connection's address goes to the host's statistics (many-level stats).
      auto bound = config.listeners.listen(loop, address, [&host, access = config.access.for_listener(address)](
                                                              const ConnectionInfo& info) {
        return host.create_session(info, access);
      });
      log_line("listening " + bound.to_string() + " (" + description + (config.readonly ? ", readonly" : "") +
               config.access.describe(address) + ")");
    }

    int status = exit_ok;
    if (config.stdio) {
      if (!config.listen.empty()) loop.start();
      log_line("serving one guest on stdin/stdout (" + description + (config.readonly ? ", readonly" : "") +
               config.access.describe("stdio") + ")");
      auto session = host.create_session("stdio", config.access.for_listener("stdio"));
      std::string reason = serve_fd(STDIN_FILENO, STDOUT_FILENO, *session);
      log_line("stdio guest disconnected: " + reason);
      loop.stop();
    } else {
      loop.run();
    }

    // A relay's workers may be waiting on the upstream host, which may never
    // answer; the Host's destructor waits for its workers. Closing the
    // upstream guest first aborts those waits (LEVEL_DATABASE_NOT_OPEN), so
    // a relay stops at once even while its upstream is down. A local store
    // stays open until the host is gone, so its jobs in flight complete.
    if (config.upstream && store) {
      try {
        store->close();
      } catch (const std::exception& e) {
        log_line(std::string("closing the upstream guest failed: ") + e.what());
      }
    }

    {
      auto& state = shutdown_state();
      std::lock_guard<std::mutex> lock(state.mutex);
      state.loop = nullptr;
      state.database = nullptr;
    }
    return status;
}
}  // namespace

}  // namespace cli
