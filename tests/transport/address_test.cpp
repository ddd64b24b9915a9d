#include "many_level/transport/address.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <fstream>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace {

using many_level::Address;
using many_level::Error;
using many_level::ListeningSocket;
using many_level::parse_address;
using many_level::UniqueFd;
namespace codes = many_level::codes;
using transport_test::TempDir;

TEST(AddressParse, TcpForms) {
  Address ipv4 = parse_address("tcp://127.0.0.1:8080");
  EXPECT_TRUE(ipv4.is_tcp());
  EXPECT_EQ(ipv4.host, "127.0.0.1");
  EXPECT_EQ(ipv4.port, 8080);

  Address ipv6 = parse_address("tcp://[::1]:0");
  EXPECT_EQ(ipv6.host, "::1");
  EXPECT_EQ(ipv6.port, 0);

  Address named = parse_address("tcp://db-1.example_host.local:65535");
  EXPECT_EQ(named.host, "db-1.example_host.local");
  EXPECT_EQ(named.port, 65535);
}

TEST(AddressParse, UnixForms) {
  Address absolute = parse_address("unix:/tmp/db.sock");
  EXPECT_TRUE(absolute.is_unix());
  EXPECT_EQ(absolute.path, "/tmp/db.sock");
  EXPECT_EQ(parse_address("unix:relative/db.sock").path, "relative/db.sock");
  EXPECT_EQ(parse_address("unix:@abstract").path, "@abstract");
}

TEST(AddressParse, FormatsBackToTheSameText) {
  for (const char* text : {"tcp://127.0.0.1:1", "tcp://[::1]:8080", "tcp://[fe80::1:2]:9", "tcp://localhost:0",
                           "unix:/run/many-level.sock", "unix:x"}) {
    EXPECT_EQ(parse_address(text).to_string(), text);
    EXPECT_EQ(parse_address(parse_address(text).to_string()), parse_address(text));
  }
  EXPECT_EQ(Address::tcp("::1", 5).to_string(), "tcp://[::1]:5");
  EXPECT_EQ(Address::unix_socket("/a").to_string(), "unix:/a");
}

TEST(AddressParse, TlsIsTcpThatWantsTls) {
  Address tls = parse_address("tls://db.example.com:9443");
  EXPECT_TRUE(tls.is_tcp());
  EXPECT_TRUE(tls.tls);
  EXPECT_EQ(tls.host, "db.example.com");
  EXPECT_EQ(tls.port, 9443);
  EXPECT_FALSE(parse_address("tcp://db.example.com:9443").tls);
  EXPECT_NE(tls, parse_address("tcp://db.example.com:9443"));
  EXPECT_EQ(tls, parse_address("tcp://db.example.com:9443").with_tls());
  EXPECT_EQ(tls.with_tls(false), parse_address("tcp://db.example.com:9443"));
  EXPECT_FALSE(Address::unix_socket("/a").with_tls().tls);  // TLS only rides on TCP here

  for (const char* text : {"tls://127.0.0.1:1", "tls://[::1]:8080", "tls://localhost:0"}) {
    EXPECT_EQ(parse_address(text).to_string(), text);
  }
  for (const char* text : {"tls://", "tls://host", "tls://[::1]", "TLS://host:1", "tls:/host:1", "tls:unix"}) {
    EXPECT_THROW(parse_address(text), Error) << text;
  }
}

TEST(AddressListen, TlsListensAndConnectsAsTcpAndKeepsSaying) {
  ListeningSocket listener = many_level::listen_on(parse_address("tls://127.0.0.1:0"));
  EXPECT_TRUE(listener.address().tls);
  EXPECT_EQ(listener.address().to_string(), "tls://127.0.0.1:" + std::to_string(listener.address().port));
  UniqueFd client = many_level::connect_to(listener.address());
  EXPECT_EQ(many_level::peer_address(client.get()), listener.address().with_tls(false));
}

TEST(AddressParse, RejectsEverythingElse) {
  const std::vector<std::string> bad = {
      "",
      "127.0.0.1:80",
      "localhost",
      "tcp://",
      "tcp://host",
      "tcp://host:",
      "tcp://:80",
      "tcp://host:65536",
      "tcp://host:123456",
      "tcp://host:8o",
      "tcp://host:-1",
      "tcp://host:80/path",
      "tcp://ho st:80",
      "tcp://user@host:80",
      "tcp://::1:80",
      "tcp://[::1]",
      "tcp://[::1]80",
      "tcp://[::1:80",
      "tcp://[]:80",
      "tcp://[not-ipv6]:80",
      "TCP://host:80",
      " tcp://host:80",
      "http://host:80",
      "udp://host:80",
      "unix:",
      "unix",
      "unix:" + std::string(108, 'x'),
      std::string("unix:/tmp/a\0b", 13),
  };
  for (const std::string& text : bad) {
    try {
      parse_address(text);
      ADD_FAILURE() << "accepted \"" << text << "\"";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), codes::invalid_argument) << text;
      EXPECT_NE(std::string(error.what()).find("expected tcp://HOST:PORT, tls://HOST:PORT or unix:PATH, got \""),
                std::string::npos)
          << error.what();
    }
  }
}

TEST(AddressListen, PortZeroReportsTheRealPort) {
  ListeningSocket listener = many_level::listen_on(parse_address("tcp://127.0.0.1:0"));
  const Address& bound = listener.address();
  EXPECT_EQ(bound.host, "127.0.0.1");
  EXPECT_NE(bound.port, 0);

  UniqueFd client = many_level::connect_to(bound);
  EXPECT_EQ(many_level::peer_address(client.get()), bound);
  EXPECT_EQ(many_level::local_address(client.get()).host, "127.0.0.1");
}

TEST(AddressListen, ResolvesNames) {
  ListeningSocket listener = many_level::listen_on(parse_address("tcp://localhost:0"));
  EXPECT_NE(listener.address().port, 0);
  Address target = Address::tcp("localhost", listener.address().port);
  // localhost may resolve to ::1 first while we bound 127.0.0.1 (or the
  // reverse): connect_to tries each address in turn.
  UniqueFd client = many_level::connect_to(target);
  EXPECT_TRUE(client);
}

TEST(AddressListen, Ipv6Loopback) {
  ListeningSocket listener;
  try {
    listener = many_level::listen_on(parse_address("tcp://[::1]:0"));
  } catch (const Error& error) {
    GTEST_SKIP() << "no IPv6 loopback here: " << error.what();
  }
  EXPECT_EQ(listener.address().host, "::1");
  EXPECT_EQ(listener.address().to_string(), "tcp://[::1]:" + std::to_string(listener.address().port));
  UniqueFd client = many_level::connect_to(listener.address());
  EXPECT_TRUE(client);
}

TEST(AddressConnect, RefusedIsAnIoError) {
  std::uint16_t port;
  {
    ListeningSocket listener = many_level::listen_on(parse_address("tcp://127.0.0.1:0"));
    port = listener.address().port;
  }
  try {
    many_level::connect_to(Address::tcp("127.0.0.1", port));
    FAIL() << "connected to a closed port";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), codes::io_error);
    EXPECT_NE(std::string(error.what()).find("tcp://127.0.0.1:" + std::to_string(port)), std::string::npos);
  }
  TempDir dir;
  EXPECT_THROW(many_level::connect_to(Address::unix_socket(dir.file("absent.sock"))), Error);
}

TEST(AddressConnect, TimesOutWhenNobodyAccepts) {
  // A listener that never accepts, with the smallest backlog: once its queue
  // is full the kernel drops further SYNs, so a connect can only time out.
  ListeningSocket listener = many_level::listen_on(parse_address("tcp://127.0.0.1:0"), 0);
  std::vector<UniqueFd> queued;
  bool timed_out = false;
  for (int attempt = 0; attempt < 16 && !timed_out; ++attempt) {
    try {
      queued.push_back(many_level::connect_to(listener.address(), std::chrono::milliseconds(200)));
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), codes::io_error);
      EXPECT_NE(std::string(error.what()).find("timed out"), std::string::npos) << error.what();
      timed_out = true;
    }
  }
  EXPECT_TRUE(timed_out);
}

TEST(AddressUnix, ListensConnectsAndRemovesItsFile) {
  TempDir dir;
  const std::string path = dir.file("db.sock");
  {
    ListeningSocket listener = many_level::listen_on(Address::unix_socket(path));
    EXPECT_EQ(listener.address(), Address::unix_socket(path));
    UniqueFd client = many_level::connect_to(listener.address());
    EXPECT_TRUE(client);
    struct stat st {};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
  }
  struct stat st {};
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "socket file left behind";
}

TEST(AddressUnix, StaleSocketFileIsReplaced) {
  TempDir dir;
  const std::string path = dir.file("stale.sock");
  {
    // What a server that died leaves behind: a bound socket file, nobody listening.
    UniqueFd dead(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::snprintf(un.sun_path, sizeof un.sun_path, "%s", path.c_str());
    ASSERT_EQ(::bind(dead.get(), reinterpret_cast<sockaddr*>(&un), sizeof un), 0);
    ASSERT_EQ(::listen(dead.get(), 1), 0);
  }
  EXPECT_THROW(many_level::connect_to(Address::unix_socket(path)), Error);  // stale indeed
  ListeningSocket listener = many_level::listen_on(Address::unix_socket(path));
  UniqueFd client = many_level::connect_to(Address::unix_socket(path));
  EXPECT_TRUE(client);
}

TEST(AddressUnix, LiveSocketIsNotTakenOver) {
  TempDir dir;
  const std::string path = dir.file("live.sock");
  ListeningSocket first = many_level::listen_on(Address::unix_socket(path));
  try {
    many_level::listen_on(Address::unix_socket(path));
    FAIL() << "a second listener took over a live socket";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), codes::io_error);
    EXPECT_NE(std::string(error.what()).find("listening"), std::string::npos) << error.what();
  }
  UniqueFd client = many_level::connect_to(first.address());
  EXPECT_TRUE(client);
}

TEST(AddressUnix, AbstractNamespace) {
  const std::string name = "@many-level-transport-test-" + std::to_string(::getpid());
  ListeningSocket listener = many_level::listen_on(Address::unix_socket(name));
  EXPECT_EQ(listener.address(), Address::unix_socket(name));
  UniqueFd client = many_level::connect_to(parse_address("unix:" + name));
  EXPECT_TRUE(client);
}

TEST(AddressUnix, OtherFilesAreNeverRemoved) {
  TempDir dir;
  const std::string path = dir.file("data.txt");
  std::ofstream(path) << "precious";
  EXPECT_THROW(many_level::listen_on(Address::unix_socket(path)), Error);
  std::ifstream in(path);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

}  // namespace
