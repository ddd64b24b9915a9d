// The implementations the contract suite runs against, one factory each. A
// new implementation joins by writing a factory and adding it to Factories at
// the bottom of this file. A factory:
//
//   static std::string name();
//       names the instantiation in test output.
//   static constexpr bool reopens_after_close;
//       whether open() after close() works on the same object (a guest, as
//       many-level's, refuses with LEVEL_NOT_SUPPORTED).
//   Database& create(const DatabaseOptions& options = {});
//       a new, empty database (status "opening"), owned by the factory with
//       everything it stands on (a parent, a host, files).
//   Database& reopen();
//       destroys every database it handed out and returns the first one again,
//       as a new object over the same storage. Called only when
//       supports().permanence.
//   void check_isolation();
//       fails the test when anything changed outside the databases handed out
//       (a sublevel's parent, siblings). Runs in TearDown.
//
// Databases are destroyed newest first and before what they stand on.
#pragma once

#include <gtest/gtest.h>

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <many_level.hpp>

namespace contract {

using namespace many_level;

// The databases a factory handed out, destroyed newest first. A factory
// declares this member after whatever the databases stand on, so that C++'s
// reverse destruction order takes them down first.
class Handouts {
 public:
  Handouts() = default;
  Handouts(const Handouts&) = delete;
  Handouts& operator=(const Handouts&) = delete;
  ~Handouts() { clear(); }

  template <typename T>
  T& keep(std::unique_ptr<T> db) {
    T& ref = *db;
    dbs_.push_back(std::move(db));
    return ref;
  }

  void clear() {
    while (!dbs_.empty()) dbs_.pop_back();
  }

 private:
  std::vector<std::unique_ptr<Database>> dbs_;
};

class MemoryFactory {
 public:
  static std::string name() { return "Memory"; }
  static constexpr bool reopens_after_close = true;

  Database& create(const DatabaseOptions& options = {}) {
    return dbs_.keep(std::make_unique<MemoryDatabase>(options));
  }

  Database& reopen() { throw std::logic_error("a MemoryDatabase has no permanence to reopen"); }

  void check_isolation() {}

 private:
  Handouts dbs_;
};

#ifndef MANY_LEVEL_NO_SQLITE

// A directory of its own per factory (so per test), removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "many-level-contract-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

class SqliteFactory {
 public:
  static std::string name() { return "Sqlite"; }
  static constexpr bool reopens_after_close = true;

  Database& create(const DatabaseOptions& options = {}) {
    made_.push_back({dir_.file("db" + std::to_string(made_.size()) + ".sqlite"), options});
    return open(made_.back());
  }

  Database& reopen() {
    dbs_.clear();
    return open(made_.front());
  }

  void check_isolation() {}

 private:
  struct Made {
    std::string path;
    DatabaseOptions options;
  };

  Database& open(const Made& made) {
    SqliteOptions options;
    static_cast<DatabaseOptions&>(options) = made.options;
    return dbs_.keep(std::make_unique<SqliteDatabase>(made.path, options));
  }

  TempDir dir_;
  std::vector<Made> made_;
  Handouts dbs_;
};

#endif  // MANY_LEVEL_NO_SQLITE

// Sublevels of a database made by another factory. The parent also holds
// keys just outside every sublevel handed out (including the one equal to its
// upper bound) and sibling sublevels with data; check_isolation() proves that
// none of it was touched or leaked in.
template <typename Root>
class SublevelFactory {
 public:
  static std::string name() { return Root::name() + "Sublevel"; }
  // Reopening a sublevel only (passively) reopens its view of the parent.
  static constexpr bool reopens_after_close = true;

  SublevelFactory() : parent_(&root_.create()) {
    for (const char* key : {"", "!", "!!", "~", "\xff", "\xff\xff"}) neighbours_[key] = "parent";
    neighbours_[std::string("\0", 1)] = "parent";
    for (const char* sibling : {"sub", "sub1", "under_test1x", "under_tes"}) {
      std::string prefix = std::string("!") + sibling + "!";
      neighbours_[prefix + "k"] = sibling;
      neighbours_[prefix + "\xff"] = sibling;
    }
    populate();
  }

  Database& create(const DatabaseOptions& options = {}) {
    std::string name = "under_test" + std::to_string(made_.size() + 1);
    std::string prefix = "!" + name + "!";
    // Just below the prefix, its upper bound itself, and just above that.
    neighbours_["!" + name] = "below";
    neighbours_["!" + name + " "] = "below";
    neighbours_["!" + name + "\""] = "upper bound";
    neighbours_["!" + name + "\"\xff"] = "above";
    neighbours_["!" + name + "#"] = "above";
    neighbours_["!" + name + "x!k"] = "sibling";
    populate();
    made_.push_back({name, prefix, SublevelOptions{'!', options.key_encoding, options.value_encoding}});
    return open(made_.back());
  }

  Database& reopen() {
    dbs_.clear();
    parent_ = &root_.reopen();
    return open(made_.front());
  }

  void check_isolation() {
    root_.check_isolation();
    std::map<std::string, std::string> outside;
    for (auto& entry : contents()) {
      bool inside = false;
      for (const auto& made : made_) inside = inside || entry.key.compare(0, made.prefix.size(), made.prefix) == 0;
      if (!inside) outside[entry.key] = entry.value;
    }
    EXPECT_EQ(outside, neighbours_) << "the parent of the sublevels changed outside them";
  }

 private:
  struct Made {
    std::string name;
    std::string prefix;
    SublevelOptions options;
  };

  Database& open(const Made& made) { return dbs_.keep(std::make_unique<Sublevel>(*parent_, made.name, made.options)); }

  void populate() {
    std::vector<BatchOperation> operations;
    for (const auto& [key, value] : neighbours_) operations.push_back(BatchOperation::put(key, value));
    parent_->batch(operations, WriteOptions{"buffer", "buffer"});
  }

  std::vector<Entry> contents() {
    IteratorOptions options;
    options.key_encoding = "buffer";
    options.value_encoding = "buffer";
    return parent_->iterator(options)->all();
  }

  Root root_;
  Database* parent_;
  std::map<std::string, std::string> neighbours_;
  std::vector<Made> made_;
  Handouts dbs_;
};

// How a guest reaches its host, one link per guest: the shape LinkedGuestFactory
// below is parameterised by.
//
//   static std::string name();   // goes before "Guest" in the factory's name
//   Endpoint serve(Host&);       // makes a host reachable
//   void connect(const Endpoint&, std::shared_ptr<Session> guest);  // links a guest's stream to it
//   std::vector<std::string> end_reasons() const;  // why each link ended ("" while open)
//   void drop();                 // ends every link; the guests are gone by then
//
// Declared before the guests, so their links end after them.

// In-memory streams (MemoryPair), one per guest.
class MemoryLinks {
 public:
  static std::string name() { return ""; }
  using Endpoint = Host*;

  Endpoint serve(Host& host) { return &host; }

  void connect(Endpoint host, std::shared_ptr<Session> guest) {
    auto link = std::make_unique<Link>();
    link->guest = std::move(guest);
    link->host = host->create_session();
    link->pair = std::make_unique<MemoryPair>(*link->guest, *link->host);
    links_.push_back(std::move(link));
  }

  std::vector<std::string> end_reasons() const {
    std::vector<std::string> reasons;
    for (const auto& link : links_) reasons.push_back(link->pair->end_reason());
    return reasons;
  }

  void drop() { links_.clear(); }

 private:
  // The pair is declared last, so it stops before the sessions go.
  struct Link {
    std::shared_ptr<Session> guest;
    std::shared_ptr<Session> host;
    std::unique_ptr<MemoryPair> pair;
  };

  std::vector<std::unique_ptr<Link>> links_;
};

// Loopback TCP: every host listens on a free port of one event loop (its own
// thread); each guest connects with an FdConnection (a thread per guest).
// Teardown: the connections first, then the loop, which ends the host
// sessions it still holds.
class TcpLinks {
 public:
  static std::string name() { return "Tcp"; }
  using Endpoint = Address;

  TcpLinks() { loop_.start(); }
  TcpLinks(const TcpLinks&) = delete;
  TcpLinks& operator=(const TcpLinks&) = delete;
  ~TcpLinks() { drop(); }

  Endpoint serve(Host& host) {
    return loop_.listen("tcp://127.0.0.1:0", [&host](const ConnectionInfo&) { return host.create_session(); });
  }

  void connect(const Endpoint& address, std::shared_ptr<Session> guest) {
    auto link = std::make_unique<Link>();
    Link& made = *link;
    made.guest = std::move(guest);
    made.connection = connect_fd(address, *made.guest, [&made](const std::string& reason) {
      std::lock_guard<std::mutex> lock(made.mutex);
      made.reason = reason;
    });
    links_.push_back(std::move(link));
  }

  std::vector<std::string> end_reasons() const {
    std::vector<std::string> reasons;
    for (const auto& link : links_) {
      std::lock_guard<std::mutex> lock(link->mutex);
      reasons.push_back(link->reason);
    }
    return reasons;
  }

  void drop() { links_.clear(); }

 private:
  struct Link {
    std::shared_ptr<Session> guest;
    std::mutex mutex;
    std::string reason;        // written by the connection's close callback
    FdConnection connection;   // last: closed (and its callback run) before the rest goes
  };

  EventLoop loop_;
  std::vector<std::unique_ptr<Link>> links_;  // after the loop, so they go first
};

// Guests, each linked (see the Links above) to a host of its own over a
// database made by another factory. Reopening makes a new guest on the same
// host: the data is the host's. check_isolation() fails the test if a link
// ended on its own: only a guest's close() (which drops its stream on purpose)
// may end one before teardown.
template <typename Root, typename Links>
class LinkedGuestFactory {
 public:
  static std::string name() { return Root::name() + Links::name() + "Guest"; }
  static constexpr bool reopens_after_close = false;

  Database& create(const DatabaseOptions& options = {}) {
    hosts_.push_back(std::make_unique<Host>(root_.create()));
    made_.push_back({links_.serve(*hosts_.back()), options});
    return connect(made_.back());
  }

  Database& reopen() {
    dbs_.clear();
    links_.drop();
    return connect(made_.front());
  }

  void check_isolation() {
    for (const auto& reason : links_.end_reasons()) {
      if (!reason.empty() && reason.find("guest closed") == std::string::npos) {
        ADD_FAILURE() << name() << ": a guest's stream ended on its own: " << reason;
      }
    }
    root_.check_isolation();
  }

 private:
  struct Made {
    typename Links::Endpoint endpoint;
    DatabaseOptions options;
  };

  Database& connect(const Made& made) {
    GuestOptions options;
    options.encodings = made.options;
    auto guest = std::make_unique<Guest>(options);
    links_.connect(made.endpoint, guest->connect());
    return dbs_.keep(std::move(guest));
  }

  // Declaration order is teardown order, reversed: guests, links, hosts, stores.
  Root root_;
  std::vector<std::unique_ptr<Host>> hosts_;
  Links links_;
  std::vector<Made> made_;
  Handouts dbs_;
};

template <typename Root>
using GuestFactory = LinkedGuestFactory<Root, MemoryLinks>;
template <typename Root>
using TcpGuestFactory = LinkedGuestFactory<Root, TcpLinks>;

using Factories = ::testing::Types<MemoryFactory, SublevelFactory<MemoryFactory>,
                                   SublevelFactory<SublevelFactory<MemoryFactory>>, GuestFactory<MemoryFactory>,
                                   SublevelFactory<GuestFactory<MemoryFactory>>, TcpGuestFactory<MemoryFactory>
#ifndef MANY_LEVEL_NO_SQLITE
                                   ,
                                   SqliteFactory, SublevelFactory<SqliteFactory>, GuestFactory<SqliteFactory>,
                                   TcpGuestFactory<SqliteFactory>
#endif
                                   >;

}  // namespace contract
