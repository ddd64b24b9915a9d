// Factories that hand the contract suite (tests/contract) a Guest: each
// create() makes a fresh store, a Host over it and a Guest linked to that
// host through the test pump (pump.hpp), so every contract test runs through
// the wire protocol end to end.
//
// The factory concept is the one tests/contract/factories.hpp documents:
//
//   static std::string name();
//   static constexpr bool reopens_after_close = false;  // like many-level's guest
//   Database& create(const DatabaseOptions& options = {});  // fresh, empty, "opening"
//   Database& reopen();        // drops every guest handed out, returns a new
//                              // guest over the first store (a Guest reports
//                              // permanence, as many-level's does)
//   void check_isolation();    // fails the test if a stream broke on its own
//
// Plugging it in (tests/contract/factories.hpp):
//   #include "../guest/guest_factory.hpp"
//   ... Factories = ::testing::Types<..., guest_tests::GuestFactory<guest_tests::MemoryStore>,
//                                    guest_tests::GuestFactory<guest_tests::MemoryStore, true>,  // retry
//                                    SublevelFactory<guest_tests::GuestFactory<guest_tests::MemoryStore>>,
//                                    guest_tests::GuestFactory<guest_tests::SqliteStore>  // unless MANY_LEVEL_NO_SQLITE
//                                    >;
//
// Teardown order: guests newest first (each closed, which aborts whatever is
// still pending, then its pump stopped, which ends both sessions), then every
// host (joining its workers), then the stores, then their files.
#pragma once

#include <gtest/gtest.h>

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <many_level.hpp>

#include "pump.hpp"

namespace guest_tests {

using namespace many_level;

// Stores a host can stand on. make() returns a fresh, empty one each call.
struct MemoryStore {
  static std::string name() { return "Memory"; }
  std::unique_ptr<Database> make() { return std::make_unique<MemoryDatabase>(); }
};

#ifndef MANY_LEVEL_NO_SQLITE

class SqliteStore {
 public:
  static std::string name() { return "Sqlite"; }

  SqliteStore() {
    std::string pattern = (std::filesystem::temp_directory_path() / "many-level-guest-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    dir_ = pattern;
  }
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;
  ~SqliteStore() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::unique_ptr<Database> make() {
    return std::make_unique<SqliteDatabase>((dir_ / ("db" + std::to_string(count_++) + ".sqlite")).string());
  }

 private:
  std::filesystem::path dir_;
  int count_ = 0;
};

#endif  // MANY_LEVEL_NO_SQLITE

template <typename Store, bool Retry = false, size_t MaxChunk = 0>
class GuestFactory {
 public:
  static std::string name() {
    return std::string("Guest") + (Retry ? "Retry" : "") + Store::name() + (MaxChunk ? "Chunked" : "");
  }
  // open() after close() is refused with LEVEL_NOT_SUPPORTED, as many-level's guest does.
  static constexpr bool reopens_after_close = false;

  GuestFactory() = default;
  GuestFactory(const GuestFactory&) = delete;
  GuestFactory& operator=(const GuestFactory&) = delete;
  ~GuestFactory() { drop_guests(); }

  Database& create(const DatabaseOptions& options = {}) {
    auto remote = std::make_unique<Remote>();
    remote->store = store_.make();
    remote->host = std::make_unique<Host>(*remote->store, HostOptions{}, 2);
    remotes_.push_back(std::move(remote));
    made_.push_back(options);
    return attach(*remotes_.back(), options);
  }

  Database& reopen() {
    drop_guests();
    return attach(*remotes_.front(), made_.front());
  }

  void check_isolation() {
    for (const auto& connected : guests_) {
      std::string reason = connected->pump->reason();
      // A stream only ends on its own when a session failed (a protocol
      // error, or the guest's close(), which drops it on purpose).
      if (!reason.empty() && reason != "cut" && reason.find("guest closed") == std::string::npos) {
        ADD_FAILURE() << name() << ": a stream ended unexpectedly: " << reason;
      }
    }
  }

  // For tests that want to look behind a guest: the store its host serves.
  Database& store(size_t index = 0) { return *remotes_.at(index)->store; }

 private:
  struct Remote {
    std::unique_ptr<Database> store;
    std::unique_ptr<Host> host;  // destroyed before the store
    ~Remote() {
      host.reset();
      store.reset();
    }
  };

  struct Connected {
    std::unique_ptr<Guest> guest;
    std::unique_ptr<Pump> pump;
    ~Connected() {
      try {
        if (guest) guest->close();
      } catch (...) {
      }
      pump.reset();
      guest.reset();
    }
  };

  Database& attach(Remote& remote, const DatabaseOptions& options) {
    GuestOptions guest_options;
    guest_options.retry = Retry;
    guest_options.encodings = options;
    auto guest = std::make_unique<Guest>(guest_options);  // throws for an unknown encoding
    auto connected = std::make_unique<Connected>();
    connected->guest = std::move(guest);
    connected->pump = std::make_unique<Pump>(connected->guest->connect(), remote.host->create_session(),
                                             PumpOptions{MaxChunk, static_cast<uint32_t>(guests_.size() + 1)});
    guests_.push_back(std::move(connected));
    return *guests_.back()->guest;
  }

  void drop_guests() {
    while (!guests_.empty()) guests_.pop_back();
  }

  // Declaration order is teardown order, reversed: guests, hosts, stores.
  Store store_;
  std::vector<std::unique_ptr<Remote>> remotes_;
  std::vector<DatabaseOptions> made_;
  std::vector<std::unique_ptr<Connected>> guests_;
};

}  // namespace guest_tests
