// A host and guests over TLS on loopback TCP: an EventLoop listening with
// listen_tls(), guests connecting through a Connector with tls_wrapper()
// (and the fd pumps by hand). Ordinary operations, iterators, large values,
// many guests at once; every kind of failed handshake, each with a clear
// reason and the host still serving the rest; plain TCP against TLS and the
// reverse, in bounded time; and `openssl s_client` as a guest.
#include "many_level/transport/tls.hpp"

#include <ext/stdio_filebuf.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "many_level/guest/connector.hpp"
#include "many_level/guest/guest.hpp"
#include "many_level/host/host.hpp"
#include "many_level/memory_database.hpp"
#include "many_level/protocol/protocol.hpp"
#include "many_level/transport/event_loop.hpp"
#include "many_level/transport/fd_transport.hpp"
#include "many_level/transport/iostream_transport.hpp"
#include "test_support.hpp"
#include "tls_test_support.hpp"

extern char** environ;

namespace {

using many_level::Address;
using many_level::BatchOperation;
using many_level::Connector;
using many_level::ConnectorEvent;
using many_level::ConnectorOptions;
using many_level::ConnectionInfo;
using many_level::Error;
using many_level::EventLoop;
using many_level::Guest;
using many_level::GuestOptions;
using many_level::Host;
using many_level::IteratorOptions;
using many_level::MemoryDatabase;
using many_level::TlsContext;
using many_level::TlsSession;
using namespace transport_test;
namespace codes = many_level::codes;
namespace protocol = many_level::protocol;
using Clock = std::chrono::steady_clock;

// Lines that other threads add, and a wait for one that contains a text.
class Log {
 public:
  void add(std::string line) {
    std::lock_guard<std::mutex> lock(mutex_);
    lines_.push_back(std::move(line));
    changed_.notify_all();
  }

  // The first line containing `text`, or "" after wait_limit.
  std::string wait_for(const std::string& text) {
    std::unique_lock<std::mutex> lock(mutex_);
    std::string found;
    changed_.wait_for(lock, wait_limit, [&] {
      for (const auto& line : lines_) {
        if (line.find(text) != std::string::npos) {
          found = line;
          return true;
        }
      }
      return false;
    });
    return found;
  }

  std::string all() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string text;
    for (const auto& line : lines_) text += line + "\n";
    return text;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> lines_;
};

// A host on a memory database, served by an event loop on a TLS port (and,
// when asked, on a plain one). Disconnect reasons go to `disconnects`.
struct TlsHost {
  MemoryDatabase db;
  Host host{db};
  Log disconnects;
  EventLoop loop;  // after the host: it goes first, ending the sessions
  Address address;
  Address plain_address;

  explicit TlsHost(const TlsContext& context, bool also_plain = false) {
    auto factory = [this](const ConnectionInfo& info) { return host.create_session(info.peer); };
    loop.on_disconnect([this](const ConnectionInfo& info, const std::string& reason) {
      disconnects.add(info.local + " " + reason);
    });
    address = many_level::listen_tls(loop, "tls://127.0.0.1:0", context, factory);
    if (also_plain) plain_address = loop.listen("tcp://127.0.0.1:0", factory);
    loop.start();
  }
};

// A guest with a Connector; the connector's events go to `events`.
struct ConnectedGuest {
  Log events;
  Guest guest;
  std::unique_ptr<Connector> connector;  // after the guest: it goes first

  ConnectedGuest(const Address& address, const TlsContext* context, GuestOptions guest_options = {})
      : guest(guest_options) {
    ConnectorOptions options;
    options.initial_backoff = std::chrono::milliseconds(20);
    options.max_backoff = std::chrono::milliseconds(200);
    options.on_event = [this](const ConnectorEvent& event) {
      const char* kind = event.kind == ConnectorEvent::Kind::connected      ? "connected"
                         : event.kind == ConnectorEvent::Kind::disconnected ? "disconnected"
                                                                            : "failed";
      events.add(std::string(kind) + " " + event.detail);
    };
    if (context) options.wrap_session = many_level::tls_wrapper(*context);
    connector = std::make_unique<Connector>(guest, address, options);
  }
};

std::string key(int i) {
  char text[16];
  std::snprintf(text, sizeof text, "k%06d", i);
  return text;
}

TEST(TlsNetwork, GuestAndHostDoEverythingOverTls) {
  TlsHost server(certificates().server());
  EXPECT_TRUE(server.address.tls);
  EXPECT_EQ(server.address.to_string().rfind("tls://127.0.0.1:", 0), 0u);
  const TlsContext client = certificates().client();
  ConnectedGuest connected(server.address, &client);
  Guest& guest = connected.guest;

  guest.put("greeting", "hello");
  EXPECT_EQ(guest.get("greeting"), "hello");
  EXPECT_EQ(guest.try_get("absent"), std::nullopt);
  guest.del("greeting");
  EXPECT_EQ(guest.try_get("greeting"), std::nullopt);

  // Many entries in batches, read back through an iterator that the host
  // feeds frame by frame as the guest acknowledges them.
  std::vector<BatchOperation> operations;
  for (int i = 0; i < 20000; ++i) {
    operations.push_back(BatchOperation::put(key(i), std::string(100, static_cast<char>('a' + i % 26))));
    if (operations.size() == 1000) {
      guest.batch(operations);
      operations.clear();
    }
  }
  auto iterator = guest.iterator();
  int seen = 0;
  for (auto entries = iterator->nextv(333); !entries.empty(); entries = iterator->nextv(333)) {
    for (const auto& entry : entries) {
      ASSERT_EQ(entry.key, key(seen));
      ASSERT_EQ(entry.value, std::string(100, static_cast<char>('a' + seen % 26)));
      ++seen;
    }
  }
  EXPECT_EQ(seen, 20000);
  iterator->close();
  auto many = guest.get_many({key(0), "absent", key(19999)});
  ASSERT_EQ(many.size(), 3u);
  EXPECT_EQ(many[0], std::string(100, 'a'));
  EXPECT_EQ(many[1], std::nullopt);

  // Values larger than a high-water mark and many TLS records, both ways.
  const std::string large = pattern(3 << 20);
  guest.put("large", large);
  EXPECT_TRUE(guest.get("large") == large);
  EXPECT_TRUE(server.db.get("large") == large);

  EXPECT_EQ(connected.connector->connects(), 1u);
  EXPECT_EQ(connected.events.all(), "connected \n");
}

TEST(TlsNetwork, ManyGuestsAtOnce) {
  TlsHost server(certificates().server());
  const TlsContext client = certificates().client();
  constexpr int guests = 12;
  std::vector<std::unique_ptr<ConnectedGuest>> connected;
  for (int g = 0; g < guests; ++g) connected.push_back(std::make_unique<ConnectedGuest>(server.address, &client));
  std::vector<std::thread> threads;
  std::vector<int> correct(guests, 0);
  for (int g = 0; g < guests; ++g) {
    threads.emplace_back([&, g] {
      Guest& guest = connected[g]->guest;
      const std::string prefix = "g" + std::to_string(g) + ":";
      std::vector<std::future<void>> puts;
      for (int i = 0; i < 200; ++i) puts.push_back(guest.put_async(prefix + key(i), prefix + std::to_string(i)));
      for (auto& put : puts) put.get();
      for (int i = 0; i < 200; ++i) correct[g] += guest.get(prefix + key(i)) == prefix + std::to_string(i);
      IteratorOptions range;
      range.gte = prefix;
      range.lt = "g" + std::to_string(g) + ";";
      correct[g] += static_cast<int>(guest.iterator(range)->all().size());
    });
  }
  for (auto& thread : threads) thread.join();
  for (int g = 0; g < guests; ++g) EXPECT_EQ(correct[g], 400) << "guest " << g;
  EXPECT_EQ(server.loop.connection_count(), static_cast<size_t>(guests));
}

TEST(TlsNetwork, FailedHandshakesSayWhyAndTheHostServesTheOthers) {
  const auto& certs = certificates();
  struct Case {
    const char* what;
    std::string server_cert;
    bool require_client_cert;
    std::string trusted_ca;
    std::string client_cert;
    std::string guest_sees;
    std::string host_sees;
    // How the guest's Connector tells it: a handshake the guest fails is an
    // attempt that "failed" (never "connected"). In TLS 1.3 the guest may
    // finish its handshake before the host checks the client certificate:
    // that refusal is "failed" if it arrives first, else "disconnected" from
    // a connection that was up. "" accepts either.
    std::string event = "failed ";
  };
  const std::string verify_failed = "session failed: TLS handshake failed: certificate verify failed: ";
  const std::vector<Case> cases = {
      {"wrong CA", "server", false, "other-ca", "", verify_failed + "unable to get local issuer certificate",
       "session failed: TLS handshake failed: tlsv1 alert unknown ca"},
      {"expired", "expired", false, "ca", "", verify_failed + "certificate has expired",
       "session failed: TLS handshake failed: sslv3 alert certificate expired"},
      {"wrong host", "wrong-host", false, "ca", "", verify_failed + "IP address mismatch",
       "session failed: TLS handshake failed: sslv3 alert bad certificate"},
      {"client certificate missing", "server", true, "ca", "",
       "session failed: TLS error: tlsv13 alert certificate required",
       "session failed: TLS handshake failed: peer did not return a certificate", ""},
      {"client certificate from another CA", "server", true, "ca", "rogue-client",
       "session failed: TLS error: tlsv1 alert unknown ca", verify_failed + "unable to get local issuer certificate", ""},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(test.what);
    TlsHost server(certs.server(test.server_cert, test.require_client_cert));
    const TlsContext bad_client = certs.client(test.trusted_ca, test.client_cert);
    const auto started = Clock::now();
    {
      ConnectedGuest rejected(server.address, &bad_client);
      EXPECT_NE(rejected.events.wait_for(test.event + test.guest_sees), "") << rejected.events.all();
      if (test.event == "failed ") {
        EXPECT_EQ(rejected.connector->connects(), 0u);
        EXPECT_EQ(rejected.events.all().find("connected"), std::string::npos) << rejected.events.all();
      }
      EXPECT_NE(server.disconnects.wait_for(test.host_sees), "") << server.disconnects.all();
      // A request fails with its stream, and nothing of it reaches the
      // database. (A callback rather than a future: TSan cannot see the
      // reference count of an exception shared through a future, and
      // reports a race that is not.)
      auto outcome = std::make_shared<std::promise<std::string>>();
      rejected.guest.put_async("should not", "arrive", {}, [outcome](std::optional<Error> error) {
        outcome->set_value(error ? std::string(error->code()) : "no error");
      });
      auto put = outcome->get_future();
      ASSERT_EQ(put.wait_for(wait_limit), std::future_status::ready);
      EXPECT_EQ(put.get(), codes::connection_lost);
      EXPECT_EQ(server.db.try_get("should not"), std::nullopt);
    }
    EXPECT_LT(Clock::now() - started, std::chrono::seconds(10));
    // A guest that does it right is served meanwhile and after.
    if (test.server_cert == "server") {
      const TlsContext good_client = certs.client("ca", test.require_client_cert ? "client" : "");
      ConnectedGuest accepted(server.address, &good_client);
      accepted.guest.put("fine", "yes");
      EXPECT_EQ(accepted.guest.get("fine"), "yes");
    }
  }
}

TEST(TlsNetwork, PlainTcpToATlsPortFailsQuickly) {
  TlsHost server(certificates().server());
  const auto started = Clock::now();
  ConnectedGuest plain(server.address.with_tls(false), nullptr);
  // (A callback: see FailedHandshakesSayWhyAndTheHostServesTheOthers.)
  auto outcome = std::make_shared<std::promise<std::string>>();
  plain.guest.put_async("k", "v", {}, [outcome](std::optional<Error> error) {
    outcome->set_value(error ? std::string(error->code()) : "no error");
  });
  auto put = outcome->get_future();
  ASSERT_EQ(put.wait_for(wait_limit), std::future_status::ready);
  EXPECT_EQ(put.get(), codes::connection_lost);
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(10));
  EXPECT_NE(server.disconnects.wait_for("session failed: TLS handshake failed: wrong version number (the peer does "
                                        "not seem to speak TLS)"),
            "")
      << server.disconnects.all();
  EXPECT_EQ(server.db.try_get("k"), std::nullopt);
}

TEST(TlsNetwork, TlsToAPlainPortFailsQuickly) {
  TlsHost server(certificates().server(), /*also_plain=*/true);
  const TlsContext client = certificates().client("ca", "", std::chrono::milliseconds(2000));
  const auto started = Clock::now();
  ConnectedGuest confused(server.plain_address.with_tls(), &client);
  // The host ignores what it cannot decode, or answers in plain frames: the
  // guest's handshake times out, or fails on the plain bytes.
  const std::string event = confused.events.wait_for("failed session failed: TLS handshake ");
  EXPECT_NE(event, "") << confused.events.all();
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(10));
  EXPECT_NE(server.disconnects.wait_for(server.plain_address.to_string()), "") << server.disconnects.all();
}

// A host whose certificate the guest refuses is not called again and again
// at the initial backoff: each failed handshake doubles the wait, as a host
// that is not there does, and the connector never says "connected".
TEST(TlsNetwork, FailedHandshakesBackOffLikeFailedConnects) {
  TlsHost server(certificates().server("expired"));
  const TlsContext client = certificates().client();
  Guest guest;
  Log waits;
  ConnectorOptions options;
  options.initial_backoff = std::chrono::milliseconds(10);
  options.max_backoff = std::chrono::milliseconds(80);
  options.wrap_session = many_level::tls_wrapper(client);
  options.on_event = [&waits](const ConnectorEvent& event) {
    waits.add((event.kind == ConnectorEvent::Kind::failed ? "failed " : "other ") +
              std::to_string(event.next_attempt.count()));
  };
  Connector connector(guest, server.address, options);
  ASSERT_NE(waits.wait_for("failed 80"), "") << waits.all();
  connector.stop();
  EXPECT_EQ(waits.all().rfind("failed 10\nfailed 20\nfailed 40\nfailed 80\n", 0), 0u) << waits.all();
  EXPECT_FALSE(connector.connected());
  EXPECT_EQ(connector.connects(), 0u);
}

TEST(TlsNetwork, APeerThatNeverFinishesItsHandshakeIsDropped) {
  TlsHost server(certificates().server("server", false, std::chrono::milliseconds(200)));
  UniqueFd silent = many_level::connect_to(server.address);
  set_timeouts(silent.get());
  const auto started = Clock::now();
  EXPECT_TRUE(recv_until_closed(silent.get()));
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(5));
  EXPECT_NE(server.disconnects.wait_for("session failed: TLS handshake timed out after 200 ms"), "")
      << server.disconnects.all();
}

TEST(TlsNetwork, FdPumpsCarryTlsBothWays) {
  MemoryDatabase db;
  Host host(db);
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd host_end(fds[0]);
  auto host_session = std::make_shared<TlsSession>(certificates().server(), host.create_session());
  std::string served;
  std::thread serving([&] { served = many_level::serve_fd(host_end.get(), host_end.get(), *host_session); });
  {
    Guest guest;
    TlsSession guest_session(certificates().client(), guest.connect(), "localhost");
    many_level::FdConnection connection(UniqueFd(fds[1]), guest_session);
    guest.put("over", "a socketpair");
    EXPECT_EQ(guest.get("over"), "a socketpair");
    EXPECT_TRUE(guest_session.handshake_done());
    EXPECT_TRUE(host_session->handshake_done());
    connection.close();
  }
  serving.join();
  EXPECT_EQ(served, "input ended");
  EXPECT_EQ(db.get("over"), "a socketpair");
}

TEST(TlsNetwork, IostreamPumpCarriesTls) {
  ::signal(SIGPIPE, SIG_IGN);  // an ostream on a socket raises it on a write after the peer left
  MemoryDatabase db;
  Host host(db);
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  // Two descriptors for one socket: each filebuf closes its own.
  __gnu_cxx::stdio_filebuf<char> in_buffer(fds[0], std::ios::in);
  __gnu_cxx::stdio_filebuf<char> out_buffer(::dup(fds[0]), std::ios::out);
  std::istream in(&in_buffer);
  std::ostream out(&out_buffer);
  auto host_session = std::make_shared<TlsSession>(certificates().server(), host.create_session());
  std::string served;
  std::thread serving([&] { served = many_level::pump_iostream(in, out, *host_session); });
  {
    Guest guest;
    TlsSession guest_session(certificates().client(), guest.connect(), "localhost");
    many_level::FdConnection connection(UniqueFd(fds[1]), guest_session);
    guest.put("over", "iostreams");
    EXPECT_EQ(guest.get("over"), "iostreams");
    EXPECT_TRUE(host_session->handshake_done());
    connection.close();
  }
  serving.join();
  EXPECT_EQ(served, "input ended");
  EXPECT_EQ(db.get("over"), "iostreams");
}

TEST(TlsNetwork, AConnectorToATlsAddressNeedsAWrapper) {
  Guest guest;
  try {
    Connector connector(guest, "tls://127.0.0.1:1");
    FAIL() << "a connector would have spoken plain TCP to a tls:// address";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), codes::invalid_argument);
    EXPECT_NE(std::string(error.what()).find("tls://127.0.0.1:1 wants TLS"), std::string::npos) << error.what();
  }
}

// The host side of the same: a plain factory on a tls:// address would serve
// clear text where TLS was asked for.
TEST(TlsNetwork, APlainListenerOnATlsAddressIsRefused) {
  EventLoop loop;
  try {
    loop.listen("tls://127.0.0.1:0", [](const ConnectionInfo&) { return std::shared_ptr<many_level::Session>(); });
    FAIL() << "EventLoop::listen took a tls:// address with a plain factory";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), codes::invalid_argument);
    EXPECT_NE(std::string(error.what()).find("tls://127.0.0.1:0 wants TLS: listen with listen_tls()"), std::string::npos)
        << error.what();
  }
}

// `openssl s_client` as a guest: completes the handshake, verifying the host,
// and carries a many-level Get to the host and its Callback back.
TEST(TlsNetwork, OpensslSClientGetsAnAnswer) {
  TlsHost server(certificates().server());
  server.db.put("asked", "answered");
  int to_child[2];
  int from_child[2];
  ASSERT_EQ(::pipe2(to_child, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(from_child, O_CLOEXEC), 0);
  UniqueFd child_in(to_child[0]), write_end(to_child[1]), read_end(from_child[0]), child_out(from_child[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_in.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, child_out.get(), 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  const std::string connect = "127.0.0.1:" + std::to_string(server.address.port);
  const std::string ca = certificates().cert("ca");
  std::vector<std::string> args = {"openssl",         "s_client",  "-connect", connect,      "-CAfile",
                                   ca,                "-servername", "localhost", "-verify_hostname", "localhost",
                                   "-verify_return_error", "-quiet"};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "openssl", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) GTEST_SKIP() << "no openssl command here";
  child_in.reset();
  child_out.reset();

  protocol::GetRequest get;
  get.id = 7;
  get.key = "asked";
  std::string frame;
  protocol::encode(frame, get);
  EXPECT_TRUE(write_all(write_end.get(), frame));

  // Reads until one whole frame came back (or the wait runs out).
  protocol::FrameDecoder decoder;
  std::optional<protocol::HostMessage> reply;
  while (!reply) {
    char buffer[4096];
    pollfd pfd{read_end.get(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(std::chrono::milliseconds(wait_limit).count())) <= 0) break;
    ssize_t got = ::read(read_end.get(), buffer, sizeof buffer);
    if (got <= 0) break;
    decoder.feed(buffer, static_cast<size_t>(got), [&](std::string_view payload) {
      protocol::HostMessage message;
      if (protocol::decode_payload(payload, message) == protocol::DecodeStatus::ok) reply = std::move(message);
    });
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);

  ASSERT_TRUE(reply.has_value()) << "no reply through openssl s_client";
  auto* callback = std::get_if<protocol::Callback>(&*reply);
  ASSERT_NE(callback, nullptr);
  EXPECT_EQ(callback->id, 7u);
  EXPECT_FALSE(callback->error.has_value() && !callback->error->empty());
  EXPECT_EQ(callback->value, std::optional<std::string>("answered"));
}

}  // namespace
