// TlsSession on its own: driven by hand (every byte accounted for, one at a
// time if need be) or by a MemoryPair, around recording sessions. Handshake
// failures, timeouts, flow control, writers on many threads, and the
// contexts' configuration errors. Over sockets: tls_network_test.cpp.
#include "many_level/transport/tls.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "many_level/transport/memory_pair.hpp"
#include "test_support.hpp"
#include "tls_test_support.hpp"

namespace {

using many_level::Error;
using many_level::MemoryPair;
using many_level::MemoryPairOptions;
using many_level::SendMode;
using many_level::Session;
using many_level::TlsClientOptions;
using many_level::TlsContext;
using many_level::TlsServerOptions;
using many_level::TlsSession;
using namespace transport_test;
namespace codes = many_level::codes;

// Moves what `from` has to send into `to`, `chunk` bytes a receive(); true if
// any byte moved.
bool shuttle(Session& from, Session& to, size_t chunk) {
  std::string bytes;
  from.output().take(bytes);
  for (size_t at = 0; at < bytes.size(); at += chunk) to.receive(bytes.data() + at, std::min(chunk, bytes.size() - at));
  return !bytes.empty();
}

// Until neither side has anything more to say.
void converse(Session& client, Session& server, size_t chunk = 1 << 20) {
  for (int rounds = 0; rounds < 10000; ++rounds) {
    const bool moved = shuttle(client, server, chunk) | shuttle(server, client, chunk);
    if (!moved) return;
  }
  ADD_FAILURE() << "the sessions never stopped talking";
}

// A client and a server around recording sessions (the server's echoes).
// The client's output is unbounded, as a Guest's is (its requests are bounded
// by its callers): a client that stopped reading while it had more than a
// high-water mark to send would deadlock against an echoing server that
// stops reading while its echo waits (each waits for the other to read), and
// would, under load, in the tests that send megabytes.
struct Link {
  std::shared_ptr<RecordingSession> client_inner;
  std::shared_ptr<RecordingSession> server_inner;
  std::shared_ptr<TlsSession> client;
  std::shared_ptr<TlsSession> server;

  Link(const TlsContext& client_context, const TlsContext& server_context, std::string server_name = "localhost",
       size_t server_high_water = 1 << 20)
      : client_inner(std::make_shared<RecordingSession>(/*echo=*/false, /*high_water=*/SIZE_MAX)),
        server_inner(std::make_shared<RecordingSession>(/*echo=*/true, server_high_water)),
        client(std::make_shared<TlsSession>(client_context, client_inner, std::move(server_name))),
        server(std::make_shared<TlsSession>(server_context, server_inner)) {}
};

// The handshake, by hand; returns each side's failure.
std::pair<std::string, std::string> handshake(const TlsContext& client_context, const TlsContext& server_context,
                                              const std::string& server_name = "localhost") {
  Link link(client_context, server_context, server_name);
  link.client_inner->send("after the handshake");
  converse(*link.client, *link.server);
  if (link.client->failed().empty() && link.server->failed().empty()) {
    EXPECT_EQ(link.server_inner->received(), "after the handshake");
  } else {
    EXPECT_EQ(link.server_inner->received(), "") << "plaintext got through a failed handshake";
  }
  return {link.client->failed(), link.server->failed()};
}

TEST(TlsSession, HandshakesThenCarriesBothWays) {
  Link link(certificates().client(), certificates().server());
  EXPECT_FALSE(link.client->handshake_done());
  EXPECT_EQ(link.client->protocol(), "");
  // Written before the handshake: waits in the inner output, not in clear.
  link.client_inner->send("hello host");
  EXPECT_EQ(link.client_inner->output().size(), 10u);
  std::string client_hello;
  link.client->output().take(client_hello);
  EXPECT_EQ(client_hello.find("hello host"), std::string::npos);
  link.server->receive(client_hello.data(), client_hello.size());
  converse(*link.client, *link.server);

  EXPECT_TRUE(link.client->handshake_done());
  EXPECT_TRUE(link.server->handshake_done());
  EXPECT_EQ(link.client->protocol(), "TLSv1.3");
  EXPECT_FALSE(link.client->cipher().empty());
  EXPECT_EQ(link.client->peer_subject(), "CN=localhost,O=many-level tests");
  EXPECT_EQ(link.server->peer_subject(), "");  // no client certificate asked for
  EXPECT_EQ(link.server_inner->received(), "hello host");
  EXPECT_EQ(link.client_inner->received(), "hello host");  // the echo
  EXPECT_EQ(link.client->failed(), "");
  EXPECT_EQ(link.server->failed(), "");
  EXPECT_EQ(&link.client->inner(), link.client_inner.get());
}

TEST(TlsSession, OneByteAtATimeByHand) {
  Link link(certificates().client(), certificates().server());
  const std::string payload = pattern(100000);
  link.client_inner->send(payload);
  converse(*link.client, *link.server, /*chunk=*/1);
  ASSERT_TRUE(link.server_inner->received() == payload);
  EXPECT_TRUE(link.client_inner->received() == payload);
  // Plaintext goes up a record at a time, never a byte at a time.
  EXPECT_LE(link.server_inner->receive_calls(), payload.size() / 16384 + 2);
}

TEST(TlsSession, OneByteAtATimeThroughAMemoryPair) {
  Link link(certificates().client(), certificates().server());
  MemoryPairOptions options;
  options.max_chunk = 1;
  MemoryPair pair(*link.client, *link.server, options);
  const std::string payload = pattern(30000);
  for (size_t at = 0; at < payload.size(); at += 3000) link.client_inner->send(payload.substr(at, 3000));
  ASSERT_TRUE(link.client_inner->wait_received(payload.size()));
  EXPECT_TRUE(link.server_inner->received() == payload);
  EXPECT_TRUE(link.client_inner->received() == payload);
  EXPECT_TRUE(pair.is_open()) << pair.end_reason();
}

TEST(TlsSession, RandomChunksAndALargeValueThroughAMemoryPair) {
  Link link(certificates().client(), certificates().server());
  MemoryPairOptions options;
  options.max_chunk = 5000;
  options.seed = 7;
  MemoryPair pair(*link.client, *link.server, options);
  const std::string payload = pattern(3 << 20);  // many records, and more than a high-water mark
  link.client_inner->send(payload);
  ASSERT_TRUE(link.client_inner->wait_received(payload.size()));
  EXPECT_TRUE(link.server_inner->received() == payload);
  EXPECT_TRUE(link.client_inner->received() == payload);
}

TEST(TlsSession, WritersOnManyThreadsKeepTheirOrder) {
  Link link(certificates().client(), certificates().server());
  MemoryPair pair(*link.client, *link.server);
  constexpr int threads = 8;
  constexpr int messages = 2000;
  constexpr size_t message_size = 11;  // "TT:NNNNNNN\n"
  std::vector<std::thread> writers;
  for (int t = 0; t < threads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < messages; ++i) {
        char text[16];
        std::snprintf(text, sizeof text, "%02d:%07d\n", t, i);
        link.client_inner->output().write([&](std::string& out) { out.append(text, message_size); },
                                          i % 3 == 0 ? SendMode::queued : SendMode::now);
      }
    });
  }
  for (auto& writer : writers) writer.join();
  const size_t total = threads * messages * message_size;
  ASSERT_TRUE(link.server_inner->wait_received(total));
  const std::string received = link.server_inner->received();
  ASSERT_EQ(received.size(), total);
  std::vector<int> next(threads, 0);
  for (size_t at = 0; at < received.size(); at += message_size) {
    int t = -1;
    int i = -1;
    ASSERT_EQ(std::sscanf(received.c_str() + at, "%2d:%7d", &t, &i), 2) << received.substr(at, message_size);
    ASSERT_TRUE(t >= 0 && t < threads);
    ASSERT_EQ(i, next[t]) << "thread " << t;
    ++next[t];
  }
  EXPECT_TRUE(pair.is_open()) << pair.end_reason();
}

// TLS records in `bytes` (5-byte headers, then the length they say).
size_t count_records(const std::string& bytes) {
  size_t records = 0;
  for (size_t at = 0; at + 5 <= bytes.size(); ++records) {
    at += 5 + ((static_cast<unsigned char>(bytes[at + 3]) << 8) | static_cast<unsigned char>(bytes[at + 4]));
  }
  return records;
}

TEST(TlsSession, ALoneWriteLeavesOnTheWritersThread) {
  Link link(certificates().client(), certificates().server());
  converse(*link.client, *link.server);
  ASSERT_TRUE(link.client->handshake_done());
  // What a transport registers: a direct sender for SendMode::now writes, a
  // listener for the rest.
  std::mutex mutex;
  std::thread::id sent_on;
  std::string sent;
  int wakes = 0;
  link.client->output().on_direct_send([&] {
    std::lock_guard<std::mutex> lock(mutex);
    sent_on = std::this_thread::get_id();
    std::string bytes;
    link.client->output().take(bytes);
    sent += bytes;
    return true;
  });
  link.client->output().on_readable([&] {
    std::lock_guard<std::mutex> lock(mutex);
    ++wakes;
  });
  std::thread::id writer;
  std::thread([&] {
    writer = std::this_thread::get_id();
    link.client_inner->output().write([](std::string& out) { out += "a lone request"; }, SendMode::now);
  }).join();
  EXPECT_EQ(sent_on, writer);
  EXPECT_EQ(wakes, 0);
  EXPECT_EQ(count_records(sent), 1u);
  link.server->receive(sent.data(), sent.size());
  EXPECT_EQ(link.server_inner->received(), "a lone request");

  // A queued write is encrypted at once too, and left for the transport's thread.
  link.client_inner->output().write([](std::string& out) { out += "more to come"; }, SendMode::queued);
  EXPECT_EQ(wakes, 1);
  EXPECT_GT(link.client->output().size(), 0u);
  link.client->output().on_direct_send(nullptr);
  link.client->output().on_readable(nullptr);
}

// Writes a frame a hundred times over for every receive(), as a host that
// answers a pipelined batch does.
class ChattySession : public RecordingSession {
 public:
  ChattySession() : RecordingSession(/*echo=*/false) {}
  void receive(const char* data, size_t size) override {
    RecordingSession::receive(data, size);
    for (int i = 0; i < 100; ++i) send("reply" + std::to_string(i) + ";");
  }
};

TEST(TlsSession, WhatTheInnerSessionWritesInsideReceiveGoesInOneRecord) {
  auto client_inner = std::make_shared<RecordingSession>(false);
  auto server_inner = std::make_shared<ChattySession>();
  TlsSession client(certificates().client(), client_inner, "localhost");
  TlsSession server(certificates().server(), server_inner);
  converse(client, server);
  ASSERT_TRUE(server.handshake_done());
  client_inner->send("a batch of requests");
  std::string request;
  client.output().take(request);
  server.receive(request.data(), request.size());
  std::string replies;
  server.output().take(replies);
  EXPECT_EQ(count_records(replies), 1u);
  client.receive(replies.data(), replies.size());
  std::string expected;
  for (int i = 0; i < 100; ++i) expected += "reply" + std::to_string(i) + ";";
  EXPECT_EQ(client_inner->received(), expected);
}

TEST(TlsSession, HandshakeFailuresSayWhy) {
  const auto& certs = certificates();
  const std::string verify_failed = "TLS handshake failed: certificate verify failed: ";
  {
    SCOPED_TRACE("a host whose CA the client does not trust");
    auto [client, server] = handshake(certs.client("other-ca"), certs.server());
    EXPECT_EQ(client, verify_failed + "unable to get local issuer certificate");
    EXPECT_EQ(server, "TLS handshake failed: tlsv1 alert unknown ca");
  }
  {
    SCOPED_TRACE("a host certificate signed by another CA");
    auto [client, server] = handshake(certs.client(), certs.server("rogue-server"));
    EXPECT_EQ(client, verify_failed + "unable to get local issuer certificate");
  }
  {
    SCOPED_TRACE("an expired host certificate");
    auto [client, server] = handshake(certs.client(), certs.server("expired"));
    EXPECT_EQ(client, verify_failed + "certificate has expired");
    EXPECT_EQ(server, "TLS handshake failed: sslv3 alert certificate expired");
  }
  {
    SCOPED_TRACE("a certificate for another host");
    auto [client, server] = handshake(certs.client(), certs.server("wrong-host"));
    EXPECT_EQ(client, verify_failed + "hostname mismatch");
  }
  {
    SCOPED_TRACE("a host name in the common name only");
    auto [client, server] = handshake(certs.client(), certs.server("common-name-only"));
    EXPECT_EQ(client, verify_failed + "hostname mismatch");
  }
  {
    SCOPED_TRACE("a certificate for another IP address");
    auto [client, server] = handshake(certs.client(), certs.server("wrong-host"), "127.0.0.1");
    EXPECT_EQ(client, verify_failed + "IP address mismatch");
  }
  {
    SCOPED_TRACE("a client certificate required, none given");
    auto [client, server] = handshake(certs.client(), certs.server("server", /*require_client_cert=*/true));
    EXPECT_EQ(server, "TLS handshake failed: peer did not return a certificate");
    EXPECT_EQ(client, "TLS error: tlsv13 alert certificate required");
  }
  {
    SCOPED_TRACE("a client certificate from another CA");
    auto [client, server] =
        handshake(certs.client("ca", "rogue-client"), certs.server("server", /*require_client_cert=*/true));
    EXPECT_EQ(server, verify_failed + "unable to get local issuer certificate");
    EXPECT_EQ(client, "TLS error: tlsv1 alert unknown ca");
  }
}

TEST(TlsSession, GoodNamesAndClientCertificatesPass) {
  const auto& certs = certificates();
  for (const char* name : {"localhost", "127.0.0.1", "::1"}) {
    auto [client, server] = handshake(certs.client(), certs.server(), name);
    EXPECT_EQ(client, "") << name;
    EXPECT_EQ(server, "") << name;
  }
  Link link(certs.client("ca", "client"), certs.server("server", /*require_client_cert=*/true));
  converse(*link.client, *link.server);
  EXPECT_TRUE(link.server->handshake_done());
  EXPECT_EQ(link.server->failed(), "");
  EXPECT_EQ(link.server->peer_subject(), "CN=alice,O=many-level tests");
}

TEST(TlsSession, InsecureSkipsVerificationOnly) {
  TlsClientOptions options;
  options.insecure = true;
  TlsContext insecure = TlsContext::client(options);
  EXPECT_TRUE(insecure.is_insecure());
  auto [client, server] = handshake(insecure, certificates().server("rogue-server"), "wrong.example");
  EXPECT_EQ(client, "");
  EXPECT_EQ(server, "");
  // No name needed either; and still encrypted.
  Link link(insecure, certificates().server("expired"), "");
  link.client_inner->send("secret words");
  std::string wire;
  for (int round = 0; round < 10; ++round) {
    std::string bytes;
    link.client->output().take(bytes);
    wire += bytes;
    link.server->receive(bytes.data(), bytes.size());
    shuttle(*link.server, *link.client, 1 << 20);
  }
  EXPECT_EQ(link.server_inner->received(), "secret words");
  EXPECT_EQ(wire.find("secret"), std::string::npos);
}

TEST(TlsSession, GarbageFailsTheHandshakeClearly) {
  for (const std::string& garbage :
       {std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), std::string("\x0b\x01\x08\x01\x12\x03key", 11),
        std::string(20000, '\x16')}) {
    auto inner = std::make_shared<RecordingSession>();
    TlsSession server(certificates().server(), inner);
    server.receive(garbage.data(), garbage.size());
    const std::string failure = server.failed();
    EXPECT_EQ(failure.rfind("TLS handshake failed: ", 0), 0u) << failure;
    EXPECT_NE(failure.find("(the peer does not seem to speak TLS)"), std::string::npos) << failure;
    EXPECT_GT(failure.size(), std::string("TLS handshake failed: ").size() + 3) << failure;
    EXPECT_FALSE(server.wants_input());
    server.receive("more", 4);  // ignored once failed
    EXPECT_EQ(inner->received(), "");
    server.end();
    EXPECT_EQ(inner->ends(), 1);
  }
}

TEST(TlsSession, AHandshakeNotDoneInTimeFailsAndWakesTheTransport) {
  auto inner = std::make_shared<RecordingSession>();
  TlsSession server(certificates().server("server", false, std::chrono::milliseconds(100)), inner);
  Counter wakes;
  server.output().on_readable([&] { wakes.add(); });
  ASSERT_TRUE(wakes.wait_for(1));
  EXPECT_EQ(server.failed(), "TLS handshake timed out after 100 ms");
  server.output().on_readable(nullptr);
  server.end();

  // A client whose host never answers, likewise.
  auto guest = std::make_shared<RecordingSession>(false);
  TlsSession client(certificates().client("ca", "", std::chrono::milliseconds(50)), guest, "localhost");
  for (auto deadline = std::chrono::steady_clock::now() + wait_limit;
       client.failed().empty() && std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(client.failed(), "TLS handshake timed out after 50 ms");
}

TEST(TlsSession, NoTimeoutOnceTheHandshakeIsDone) {
  Link link(certificates().client("ca", "", std::chrono::milliseconds(30)),
            certificates().server("server", false, std::chrono::milliseconds(30)));
  converse(*link.client, *link.server);
  ASSERT_TRUE(link.server->handshake_done());
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(link.client->failed(), "");
  EXPECT_EQ(link.server->failed(), "");
}

TEST(TlsSession, AnInnerFailureSaysGoodbyeAndThePeerDoesNotCallItAnError) {
  Link link(certificates().client(), certificates().server());
  converse(*link.client, *link.server);
  ASSERT_TRUE(link.client->handshake_done());
  Counter wakes;
  link.client->output().on_readable([&] { wakes.add(); });
  link.client_inner->fail_now("guest closed");
  EXPECT_EQ(wakes.value(), 1);  // the inner wake reached the transport
  link.client->output().on_readable(nullptr);
  EXPECT_EQ(link.client->output().size(), 0u);
  EXPECT_EQ(link.client->failed(), "guest closed");
  EXPECT_GT(link.client->output().size(), 0u);  // the close_notify
  shuttle(*link.client, *link.server, 1 << 20);
  EXPECT_EQ(link.server->failed(), "");
  EXPECT_EQ(link.client->failed(), "guest closed");  // said once
  EXPECT_EQ(link.client->output().size(), 0u);
}

TEST(TlsSession, InputPausesWithTheInnerSessionAndWithUnsentCiphertext) {
  Link link(certificates().client(), certificates().server(), "localhost", /*server_high_water=*/4096);
  link.server_inner->set_wants_input(false);
  EXPECT_TRUE(link.server->wants_input());  // the handshake is read regardless
  converse(*link.client, *link.server);
  ASSERT_TRUE(link.server->handshake_done());
  EXPECT_FALSE(link.server->wants_input());
  link.server_inner->set_wants_input(true);
  EXPECT_TRUE(link.server->wants_input());

  // The echo of 16 KiB piles up as ciphertext nobody takes.
  link.client_inner->send(pattern(16384));
  shuttle(*link.client, *link.server, 1 << 20);
  EXPECT_GE(link.server->output().size(), 16384u);
  EXPECT_EQ(link.server->output().high_water(), 4096u);
  EXPECT_FALSE(link.server->wants_input());
  shuttle(*link.server, *link.client, 1 << 20);
  EXPECT_TRUE(link.server->wants_input());
  EXPECT_TRUE(link.client_inner->received() == pattern(16384));
}

TEST(TlsSession, EndEndsTheInnerSessionOnceAndLaterWritesGoNowhere) {
  Link link(certificates().client(), certificates().server());
  converse(*link.client, *link.server);
  link.server->end();
  link.server->end();
  EXPECT_EQ(link.server_inner->ends(), 1);
  link.server_inner->send("too late");
  EXPECT_EQ(link.server->output().size(), 0u);
  // The inner session may outlive its wrapper and keep writing.
  std::weak_ptr<TlsSession> gone = link.client;
  link.client.reset();
  EXPECT_TRUE(gone.expired());
  link.client_inner->send("nobody listens");
  link.client_inner->output().wake();
}

TEST(TlsContext, ConfigurationErrorsNameTheFile) {
  const auto& certs = certificates();
  auto expect_error = [](auto make, const std::string& mention) {
    try {
      make();
      ADD_FAILURE() << "no error; expected one mentioning " << mention;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), codes::invalid_argument);
      EXPECT_NE(std::string(error.what()).find(mention), std::string::npos) << error.what();
    }
  };
  auto server = [](std::string chain, std::string key, std::string client_ca = "") {
    TlsServerOptions options;
    options.certificate_chain_file = std::move(chain);
    options.private_key_file = std::move(key);
    options.client_ca_file = std::move(client_ca);
    return TlsContext::server(options);
  };
  expect_error([&] { server("/nonexistent/host.pem", certs.key("server")); }, "/nonexistent/host.pem");
  expect_error([&] { server(certs.cert("server"), "/nonexistent/host.key"); }, "/nonexistent/host.key");
  expect_error([&] { server(certs.cert("server"), certs.key("client")); }, "client.key: key values mismatch");
  expect_error([&] { server("", ""); }, "needs a certificate chain file and a private key file");
  expect_error([&] { server(certs.cert("server"), certs.key("server"), "/nonexistent/ca.pem"); },
               "/nonexistent/ca.pem");
  TlsClientOptions options;
  options.ca_file = "/nonexistent/ca.pem";
  expect_error([&] { TlsContext::client(options); }, "/nonexistent/ca.pem");
  options.ca_file = certs.cert("ca");
  options.certificate_file = certs.cert("client");
  expect_error([&] { TlsContext::client(options); }, "needs its private key");
  options.certificate_file.clear();
  TlsContext client = TlsContext::client(options);
  expect_error([&] { TlsSession(client, std::make_shared<RecordingSession>(), ""); }, "needs the host's name");
  expect_error([&] { TlsSession(client, nullptr, "localhost"); }, "needs a session");
  expect_error([&] { many_level::tls_wrapper(certs.server()); }, "needs a client TLS context");
  expect_error([&] { many_level::tls_sessions(client, nullptr); }, "needs a server TLS context");
}

}  // namespace
