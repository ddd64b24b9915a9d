// Tokens and grants (access.hpp, docs/SECURITY.md), end to end: a guest
// presents its token in Hello; a host that authenticates lets it in with its
// grant, refuses a wrong or missing token with LEVEL_UNAUTHENTICATED (no
// data, nothing written), lets a guest without a token (a Node guest says no
// Hello) in only with the listener's anonymous grant; a read-only grant
// refuses every kind of write; a confined grant sees one sublevel as its
// whole database and no range, seek, clear or watch gets out of it.
#include <algorithm>
#include <string>
#include <vector>

#include "extension_harness.hpp"

namespace guest_tests {
namespace {

const std::string kWriter = "writer-token-0123456789";
const std::string kReader = "reader-token-0123456789";
const std::string kTenant = "tenant-token-0123456789";

class Access : public GuestTest {
 protected:
  // A token table with a writer, a reader, and a tenant confined to "a".
  static std::shared_ptr<const TokenTable> tokens() {
    auto table = std::make_shared<TokenTable>();
    table->add_token(kWriter, Grant::read_write_all());
    table->add_token(kReader, Grant::read_only_all());
    table->add_token(kTenant, Grant{false, "a"});
    return table;
  }

  static HostAccess tokens_only() { return HostAccess::with_tokens(tokens()); }

  static GuestOptions with_token(std::optional<std::string> token) {
    GuestOptions options;
    options.token = std::move(token);
    return options;
  }

  // What the store holds, raw.
  static std::vector<Entry> stored(Database& db) { return contents(db); }

  static ReadOptions at(std::shared_ptr<Snapshot> snapshot) {
    ReadOptions options;
    options.snapshot = std::move(snapshot);
    return options;
  }

  // Every kind of write, each expected to fail with `code`.
  static void expect_every_write_refused(Guest& guest, const std::string& code) {
    EXPECT_EQ(error_code([&] { guest.put("w", "1"); }), code);
    EXPECT_EQ(error_code([&] { guest.del("k"); }), code);
    EXPECT_EQ(error_code([&] { guest.batch({BatchOperation::put("w", "1"), BatchOperation::del("k")}); }), code);
    EXPECT_EQ(error_code([&] { guest.clear(); }), code);
    EXPECT_EQ(error_code([&] { guest.batch().put("w", "2").del("k").write(); }), code);
  }
};

// ---- the token table -----------------------------------------------------------

TEST_F(Access, Sha256MatchesTheStandardVectors) {
  EXPECT_EQ(token_hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(token_hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(token_hash(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_F(Access, TheTokenFileMapsHashesToGrants) {
  const std::string text = "# comment line\n" + token_hash(kWriter) + " read-write\n\n   " +
                           token_hash(kReader) + "\tread-only   # trailing comment\n" +
                           token_hash(kTenant) + " read-write a\n";
  auto table = TokenTable::parse(text);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.grant_for(kWriter), Grant::read_write_all());
  EXPECT_EQ(table.grant_for(kReader), Grant::read_only_all());
  EXPECT_EQ(table.grant_for(kTenant), (Grant{false, "a"}));
  EXPECT_EQ(table.grant_for("wrong"), std::nullopt);
  EXPECT_EQ(table.grant_for(""), std::nullopt);
  EXPECT_EQ(table.grant_for(token_hash(kWriter)), std::nullopt);  // the hash is not the token
  EXPECT_EQ(token_file_line(token_hash(kTenant), Grant{true, "a"}), token_hash(kTenant) + " read-only a");
}

TEST_F(Access, ABadTokenFileSaysWhereAndWhy) {
  auto message = [](const std::string& text) {
    try {
      TokenTable::parse(text, "auth.txt");
    } catch (const Error& e) {
      return e.message();
    }
    return std::string("accepted");
  };
  const std::string hash = token_hash("t");
  EXPECT_EQ(message("\n" + hash + " read-everything\n"),
            "auth.txt:2: the grant is read-only or read-write, not 'read-everything'");
  EXPECT_EQ(message(hash + "\n"), "auth.txt:1: expected 'HASH read-only|read-write [SUBLEVEL]'");
  EXPECT_EQ(message(hash + " read-only a b\n"), "auth.txt:1: expected 'HASH read-only|read-write [SUBLEVEL]'");
  EXPECT_EQ(message("plain-token read-only\n"), "auth.txt:1: a token hash is 64 hex digits (SHA-256)");
  EXPECT_EQ(message(hash.substr(1) + "g read-only\n"), "auth.txt:1: a token hash is 64 hex digits (SHA-256)");
  EXPECT_NE(message(hash + " read-only sp ace\n"), "accepted");
  EXPECT_EQ(message(hash + " read-only \x01\n").rfind("auth.txt:1: Prefix must use bytes", 0), 0u);
  EXPECT_EQ(message(""), "accepted");
}

TEST_F(Access, GeneratedTokensAreLongAndDifferent) {
  auto a = generate_token();
  auto b = generate_token();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

// ---- authentication ------------------------------------------------------------

TEST_F(Access, ARightTokenGetsItsGrant) {
  Remote remote;
  Guest guest(with_token(kWriter));
  Link link(guest, remote.host, tokens_only());
  guest.put("k", "v");
  EXPECT_EQ(guest.get("k"), "v");
  EXPECT_EQ(guest.host_grant(), "read-write");
  EXPECT_FALSE(guest.host_refusal().has_value());
  EXPECT_EQ(guest.host_extension(), HostExtension::available);
  EXPECT_EQ(stored(remote.db), (std::vector<Entry>{{"k", "v"}}));
}

TEST_F(Access, AWrongTokenGetsNoDataAndWritesNothing) {
  Remote remote;
  fill(remote.db, {{"k", "secret"}});
  Guest guest(with_token("not-a-token"));
  FrameLog log(guest);
  Link link(guest, remote.host, tokens_only());
  try {
    guest.get("k");
    ADD_FAILURE() << "a wrong token read data";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), codes::unauthenticated);
    EXPECT_NE(e.message().find("requires a token"), std::string::npos) << e.message();
  }
  EXPECT_EQ(error_code([&] { guest.get_many({"k"}); }), codes::unauthenticated);
  EXPECT_EQ(error_code([&] { guest.iterator()->all(); }), codes::unauthenticated);
  expect_every_write_refused(guest, codes::unauthenticated);
  EXPECT_EQ(stored(remote.db), (std::vector<Entry>{{"k", "secret"}}));
  // The extension is refused too: no snapshot, no watch, no statistics; has
  // falls back to the base GetMany, which is refused.
  EXPECT_EQ(guest.host_extension(), HostExtension::unavailable);
  // The guest knows it was refused, and why, without making a request.
  auto refusal = guest.host_refusal();
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->code(), codes::unauthenticated);
  EXPECT_NE(refusal->message().find("requires a token"), std::string::npos) << refusal->message();
  EXPECT_EQ(guest.host_grant(), "");
  EXPECT_EQ(error_code([&] { guest.has("k"); }), codes::unauthenticated);
  EXPECT_EQ(error_code([&] { guest.snapshot(); }), codes::not_supported);
  EXPECT_EQ(error_code([&] { guest.host_stats(); }), codes::not_supported);
  for (const auto& reply : log.received<proto::HelloReply>()) {
    EXPECT_EQ(reply.error, std::optional<std::string>(codes::unauthenticated));
    EXPECT_TRUE(reply.features.empty());
  }
  // Not a byte of the value crossed the wire.
  for (const auto& callback : log.received<proto::Callback>()) EXPECT_FALSE(callback.value.has_value());
}

TEST_F(Access, AMissingTokenIsRefusedWithoutAnAnonymousGrant) {
  Remote remote;
  Guest guest;  // no token
  Link link(guest, remote.host, tokens_only());
  EXPECT_EQ(error_code([&] { guest.put("k", "v"); }), codes::unauthenticated);
  EXPECT_TRUE(stored(remote.db).empty());
}

TEST_F(Access, AGuestWithoutHelloIsRefusedOnAnAuthenticatingListener) {
  // A guest with its extension off sends what a Node many-level guest sends.
  Remote remote;
  fill(remote.db, {{"k", "secret"}});
  GuestOptions options;
  options.extension = false;
  Guest guest(options);
  Link link(guest, remote.host, tokens_only());
  EXPECT_EQ(error_code([&] { guest.get("k"); }), codes::unauthenticated);
  EXPECT_EQ(error_code([&] { guest.put("k", "overwritten"); }), codes::unauthenticated);
  EXPECT_EQ(stored(remote.db), (std::vector<Entry>{{"k", "secret"}}));
}

TEST_F(Access, AnAnonymousGrantLetsGuestsWithoutATokenIn) {
  Remote remote;
  fill(remote.db, {{"k", "v"}});
  GuestOptions node_like;
  node_like.extension = false;
  Guest guest(node_like);
  Link link(guest, remote.host, HostAccess::with_tokens(tokens(), Grant::read_only_all()));
  EXPECT_EQ(guest.get("k"), "v");
  expect_every_write_refused(guest, codes::readonly);

  // A C++ guest without a token gets the same grant, and hears it.
  Guest cpp_guest;
  Link cpp_link(cpp_guest, remote.host, HostAccess::with_tokens(tokens(), Grant::read_only_all()));
  EXPECT_EQ(cpp_guest.get("k"), "v");
  EXPECT_EQ(cpp_guest.host_grant(), "read-only");
  // A wrong token is not downgraded to the anonymous grant.
  Guest wrong(with_token("wrong"));
  Link wrong_link(wrong, remote.host, HostAccess::with_tokens(tokens(), Grant::read_only_all()));
  EXPECT_EQ(error_code([&] { wrong.get("k"); }), codes::unauthenticated);
  EXPECT_EQ(stored(remote.db), (std::vector<Entry>{{"k", "v"}}));
}

TEST_F(Access, EachListenerHasItsOwnAccess) {
  HostOptions options;
  options.access = tokens_only();
  Remote remote(options);
  Guest by_default;  // no token, on the host's default access: refused
  Link default_link(by_default, remote.host);
  EXPECT_EQ(error_code([&] { by_default.put("k", "v"); }), codes::unauthenticated);
  Guest on_open_listener;  // the same guest on a listener open to all
  Link open_link(on_open_listener, remote.host, HostAccess::open());
  on_open_listener.put("k", "v");
  EXPECT_EQ(stored(remote.db), (std::vector<Entry>{{"k", "v"}}));
}

TEST_F(Access, ATokenSentToAnOpenHostChangesNothing) {
  Remote remote;
  Guest guest(with_token("anything"));
  Link link(guest, remote.host);
  guest.put("k", "v");
  EXPECT_EQ(guest.get("k"), "v");
  EXPECT_EQ(guest.host_grant(), "read-write");
}

// ---- read-only -------------------------------------------------------------------

TEST_F(Access, AReadOnlyGrantRefusesEveryWriteAndNamesTheGrant) {
  Remote remote;
  fill(remote.db, {{"k", "v"}});
  Guest guest(with_token(kReader));
  Link link(guest, remote.host, tokens_only());
  EXPECT_EQ(guest.get("k"), "v");
  EXPECT_EQ(guest.host_grant(), "read-only");
  expect_every_write_refused(guest, codes::readonly);
  try {
    guest.put("k", "changed");
    ADD_FAILURE() << "a read-only grant wrote";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("grant on the host is read-only"), std::string::npos) << e.message();
  }
  EXPECT_EQ(stored(remote.db), (std::vector<Entry>{{"k", "v"}}));
  // Reads of every kind work: has, snapshots, watches, statistics.
  EXPECT_TRUE(guest.has("k"));
  auto snapshot = guest.snapshot();
  EXPECT_EQ(guest.get("k", at(snapshot)), "v");
  EXPECT_EQ(guest.host_stats().connections.size(), 1u);
}

// ---- confinement -----------------------------------------------------------------

class Confinement : public Access {
 protected:
  // The tenant's sublevel "a" (keys "!a!..."), its neighbours and the root.
  static void fill_neighbourhood(Database& db) {
    fill(db, {{"!a!x", "1"},
              {"!a!y!z", "2"},  // a key of the tenant's that holds the separator
              {"!a!!", "3"},    // and one that is the separator
              {"!a", "root-1"},
              {"!a\"", "root-2"},  // just past the tenant's upper bound
              {"!ab!x", "other-tenant"},
              {"!b!x", "other"},
              {"", "root-empty"},
              {"z", "root-z"}});
  }
  static std::vector<Entry> outside() {
    return {{"", "root-empty"}, {"!a", "root-1"}, {"!a\"", "root-2"}, {"!ab!x", "other-tenant"}, {"!b!x", "other"},
            {"z", "root-z"}};
  }
  static std::vector<Entry> only_outside(Database& db) {
    std::vector<Entry> out;
    for (auto& entry : contents(db)) {
      if (entry.key.rfind("!a!", 0) != 0) out.push_back(entry);
    }
    return out;
  }
};

TEST_F(Confinement, TheSublevelIsTheWholeDatabase) {
  Remote remote;
  fill_neighbourhood(remote.db);
  Guest guest(with_token(kTenant));
  Link link(guest, remote.host, tokens_only());
  EXPECT_EQ(contents(guest), (std::vector<Entry>{{"!", "3"}, {"x", "1"}, {"y!z", "2"}}));
  EXPECT_EQ(guest.try_get("x"), std::optional<std::string>("1"));
  EXPECT_EQ(guest.try_get("!a!x"), std::nullopt);  // no way to name the root's keys
  EXPECT_EQ(guest.try_get("!b!x"), std::nullopt);
  guest.put("new", "n");
  EXPECT_EQ(remote.db.get("!a!new"), "n");
}

TEST_F(Confinement, NoRangeReachesOutside) {
  Remote remote;
  fill_neighbourhood(remote.db);
  Guest guest(with_token(kTenant));
  Link link(guest, remote.host, tokens_only());
  const std::vector<Entry> mine = {{"!", "3"}, {"x", "1"}, {"y!z", "2"}};
  const std::optional<std::string> none;
  for (auto options : {range(std::string(""), none, none, none),
                       range(none, std::string(""), std::string("\xff\xff\xff"), none),
                       range(none, std::string("!"), none, std::string("~~~~")),
                       range(none, std::string("\""), none, none),
                       range(none, none, std::string("\x01"), none),
                       range(std::string("!a!"), none, std::string("!b!"), none)}) {
    auto got = contents(guest, options);
    for (const auto& entry : got) {
      EXPECT_NE(std::find(mine.begin(), mine.end(), entry), mine.end())
          << "escaped with " << describe(options) << ": " << ::testing::PrintToString(entry);
    }
  }
  auto reverse = range(none, none, none, none, -1, true);
  EXPECT_EQ(contents(guest, reverse), (std::vector<Entry>{{"y!z", "2"}, {"x", "1"}, {"!", "3"}}));
}

TEST_F(Confinement, NoSeekReachesOutside) {
  Remote remote;
  fill_neighbourhood(remote.db);
  Guest guest(with_token(kTenant));
  Link link(guest, remote.host, tokens_only());
  for (const std::string target : {std::string(""), std::string("!"), std::string("!b!"), std::string("\xff"),
                                   std::string("!a\""), std::string("~")}) {
    for (bool reverse : {false, true}) {
      IteratorOptions options;
      options.reverse = reverse;
      options.key_encoding = options.value_encoding = "buffer";
      auto iterator = guest.iterator(options);
      iterator->seek(target);
      while (auto entry = iterator->next()) {
        EXPECT_TRUE(entry->key == "!" || entry->key == "x" || entry->key == "y!z")
            << "seek to " << ::testing::PrintToString(target) << " reached " << ::testing::PrintToString(entry->key);
      }
    }
  }
}

TEST_F(Confinement, NoClearReachesOutside) {
  Remote remote;
  fill_neighbourhood(remote.db);
  Guest guest(with_token(kTenant));
  Link link(guest, remote.host, tokens_only());
  ClearOptions wide;
  wide.gte = std::string("");
  wide.lte = std::string("\xff\xff");
  guest.clear(wide);
  guest.clear();
  ClearOptions reversed_limited;
  reversed_limited.reverse = true;
  reversed_limited.limit = 100;
  guest.clear(reversed_limited);
  EXPECT_TRUE(contents(guest).empty());
  EXPECT_EQ(only_outside(remote.db), outside());
  EXPECT_EQ(contents(remote.db).size(), outside().size());
  // Deletes and batches by keys that look like the root's stay inside too.
  guest.del("!b!x");
  guest.batch({BatchOperation::del("z"), BatchOperation::put("!b!x", "planted")});
  EXPECT_EQ(remote.db.get("!b!x"), "other");
  EXPECT_EQ(remote.db.get("!a!!b!x"), "planted");
}

TEST_F(Confinement, WatchesSeeOnlyTheSublevelWithItsPrefixOff) {
  Remote remote;
  Guest guest(with_token(kTenant));
  Link link(guest, remote.host, tokens_only());
  WatchLog watched;
  WatchOptions options;
  options.key_encoding = options.value_encoding = "buffer";
  auto watch = guest.watch(options, watched.callback());
  remote.db.put("!b!x", "other");
  remote.db.put("z", "root");
  remote.db.put("!a!k", "mine");
  ASSERT_TRUE(watched.wait_for_commits(1));
  auto commits = watched.commits();
  ASSERT_EQ(commits.size(), 1u);
  EXPECT_EQ(commits[0].operations, (std::vector<BatchOperation>{BatchOperation::put("k", "mine")}));
}

TEST_F(Confinement, StatisticsAreDenied) {
  Remote remote;
  Guest guest(with_token(kTenant));
  Link link(guest, remote.host, tokens_only());
  guest.put("k", "v");  // settles the stream
  EXPECT_EQ(guest.host_grant(), "read-write");
  auto features = guest.host_features();
  EXPECT_EQ(std::find(features.begin(), features.end(), "stats"), features.end());
  EXPECT_EQ(error_code([&] { guest.host_stats(); }), codes::not_supported);
}

TEST_F(Confinement, SnapshotsReadTheSublevel) {
  Remote remote;
  fill_neighbourhood(remote.db);
  Guest guest(with_token(kTenant));
  Link link(guest, remote.host, tokens_only());
  auto snapshot = guest.snapshot();
  guest.put("x", "changed");
  remote.db.put("!a!late", "late");
  IteratorOptions options;
  options.snapshot = snapshot;
  EXPECT_EQ(contents(guest, options), (std::vector<Entry>{{"!", "3"}, {"x", "1"}, {"y!z", "2"}}));
  EXPECT_EQ(guest.get("x", at(snapshot)), "1");
}

}  // namespace
}  // namespace guest_tests
