// Where a host listens and a guest connects: `tcp://HOST:PORT` (IPv4, IPv6 in
// brackets, or a name resolved with getaddrinfo), `tls://HOST:PORT` (the same
// TCP socket, carrying TLS) and `unix:PATH`. Parsing and formatting, plus the
// sockets behind them: listen, connect with a timeout, and the address
// actually bound (port 0 becomes the real port).
//
// A tls:// address only says that its stream wants TLS: the sockets here are
// plain TCP either way, and whoever attaches a session to one wraps it
// (transport/tls.hpp: listen_tls() for an EventLoop, tls_wrapper() for a
// Connector, TlsSession for anything else).
#pragma once

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "../error.hpp"
#include "../version.hpp"
#include "fd.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

struct Address {
  // Not named `unix`: GNU modes predefine that as a macro.
  enum class Kind { tcp, unix_socket };

  Kind kind = Kind::tcp;
  std::string host;  // tcp: a name or a literal, IPv6 without brackets
  std::uint16_t port = 0;
  std::string path;  // unix_socket
  bool tls = false;  // tcp only: the stream carries TLS (tls://HOST:PORT)

  static Address tcp(std::string host, std::uint16_t port) {
    Address address;
    address.host = std::move(host);
    address.port = port;
    return address;
  }

  static Address unix_socket(std::string path) {
    Address address;
    address.kind = Kind::unix_socket;
    address.path = std::move(path);
    return address;
  }

  // The same TCP address, wanting TLS or not.
  Address with_tls(bool wants_tls = true) const {
    Address address = *this;
    address.tls = wants_tls && is_tcp();
    return address;
  }

  // True for tls:// too: TLS rides on a TCP socket.
  bool is_tcp() const { return kind == Kind::tcp; }
  bool is_unix() const { return kind == Kind::unix_socket; }

  // The form parse_address() reads back.
  std::string to_string() const {
    if (is_unix()) return "unix:" + path;
    const char* scheme = tls ? "tls://" : "tcp://";
    if (host.find(':') != std::string::npos) return scheme + ("[" + host + "]:") + std::to_string(port);
    return scheme + host + ":" + std::to_string(port);
  }

  friend bool operator==(const Address& a, const Address& b) {
    return a.kind == b.kind && a.host == b.host && a.port == b.port && a.path == b.path && a.tls == b.tls;
  }
  friend bool operator!=(const Address& a, const Address& b) { return !(a == b); }
};

namespace detail {

[[noreturn]] inline void bad_address(std::string_view text, const char* why) {
  throw Error(codes::invalid_argument, "expected tcp://HOST:PORT, tls://HOST:PORT or unix:PATH, got \"" +
                                           std::string(text) + "\" (" + why + ")");
}

}  // namespace detail

// Throws Error(LEVEL_INVALID_ARGUMENT) on anything that is not one of the
// three forms. Names are checked for shape only; they are resolved on use.
// `unix:@NAME` is Linux's abstract namespace: no file, gone with its socket.
inline Address parse_address(std::string_view text) {
  using detail::bad_address;
  auto starts_with = [&](std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; };
  if (starts_with("unix:")) {
    std::string_view path = text.substr(5);
    if (path.empty()) bad_address(text, "empty path");
    if (path.find('\0') != std::string_view::npos) bad_address(text, "NUL in path");
    if (path.size() >= sizeof(sockaddr_un{}.sun_path)) bad_address(text, "path longer than 107 bytes");
    return Address::unix_socket(std::string(path));
  }
  const bool tls = starts_with("tls://");
  if (!tls && !starts_with("tcp://")) bad_address(text, "unknown scheme");

  std::string_view rest = text.substr(6);
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) bad_address(text, "missing ]");
    host = rest.substr(1, close - 1);
    if (close + 1 >= rest.size() || rest[close + 1] != ':') bad_address(text, "missing :PORT");
    port = rest.substr(close + 2);
    in6_addr ignored;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &ignored) != 1) {
      bad_address(text, "not an IPv6 address in brackets");
    }
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) bad_address(text, "missing :PORT");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) bad_address(text, "IPv6 addresses go in brackets");
    for (char c : host) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-' || c == '_';
      if (!ok) bad_address(text, "bad character in host");
    }
  }
  if (host.empty()) bad_address(text, "empty host");
  if (port.empty() || port.size() > 5) bad_address(text, "bad port");
  unsigned long number = 0;
  for (char c : port) {
    if (c < '0' || c > '9') bad_address(text, "bad port");
    number = number * 10 + static_cast<unsigned long>(c - '0');
  }
  if (number > 65535) bad_address(text, "port out of range");
  return Address::tcp(std::string(host), static_cast<std::uint16_t>(number)).with_tls(tls);
}

// The address in a sockaddr (what getsockname/getpeername/accept give).
// An unnamed unix peer (a client that did not bind) has an empty path.
inline Address address_of(const sockaddr* sa, socklen_t length) {
  char text[INET6_ADDRSTRLEN] = {};
  switch (sa->sa_family) {
    case AF_INET: {
      auto* in = reinterpret_cast<const sockaddr_in*>(sa);
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
      return Address::tcp(text, ntohs(in->sin_port));
    }
    case AF_INET6: {
      auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
      return Address::tcp(text, ntohs(in6->sin6_port));
    }
    case AF_UNIX: {
      auto* un = reinterpret_cast<const sockaddr_un*>(sa);
      const size_t offset = offsetof(sockaddr_un, sun_path);
      if (length <= offset) return Address::unix_socket("");
      std::string path(un->sun_path, length - offset);
      if (!path.empty() && path[0] == '\0') {
        path[0] = '@';  // Linux abstract namespace, shown the way ss(8) does
      } else {
        path.resize(std::strlen(path.c_str()));
      }
      return Address::unix_socket(std::move(path));
    }
    default:
      throw Error(codes::invalid_argument, "unsupported address family " + std::to_string(sa->sa_family));
  }
}

inline Address local_address(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) < 0) {
    throw detail::errno_error("getsockname");
  }
  return address_of(reinterpret_cast<sockaddr*>(&storage), length);
}

inline Address peer_address(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length) < 0) {
    throw detail::errno_error("getpeername");
  }
  return address_of(reinterpret_cast<sockaddr*>(&storage), length);
}

namespace detail {

struct AddrinfoDeleter {
  void operator()(addrinfo* list) const { freeaddrinfo(list); }
};
using AddrinfoList = std::unique_ptr<addrinfo, AddrinfoDeleter>;

inline AddrinfoList resolve_address(const Address& address, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* list = nullptr;
  int status = getaddrinfo(address.host.c_str(), std::to_string(address.port).c_str(), &hints, &list);
  if (status != 0) {
    throw Error(codes::io_error, "cannot resolve " + address.to_string() + ": " + gai_strerror(status));
  }
  return AddrinfoList(list);
}

inline sockaddr_un unix_sockaddr(const std::string& path, socklen_t& length) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  if (path.size() >= sizeof un.sun_path) {
    throw Error(codes::invalid_argument, "unix socket path longer than 107 bytes: " + path);
  }
  std::memcpy(un.sun_path, path.data(), path.size());
  if (!path.empty() && path[0] == '@') un.sun_path[0] = '\0';  // abstract namespace
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '@' ? 0 : 1));
  return un;
}

// A socket file left behind by a server that died is removed, but only when
// nothing accepts on it: a live server's socket (or any other file) is never
// touched. Two servers starting on one path at the same instant can still
// race; the bind of one of them then fails.
inline void remove_stale_unix_socket(const std::string& path) {
  if (path.empty() || path[0] == '@') return;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;  // nothing there: bind decides
  if (!S_ISSOCK(st.st_mode)) {
    throw Error(codes::io_error, "cannot listen on unix:" + path + ": the file exists and is not a socket");
  }
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!probe) throw errno_error("socket");
  socklen_t length;
  sockaddr_un un = unix_sockaddr(path, length);
  int result;
  do {
    result = ::connect(probe.get(), reinterpret_cast<sockaddr*>(&un), length);
  } while (result < 0 && errno == EINTR);
  // EAGAIN: its backlog is full, so it is alive.
  if (result == 0 || errno == EAGAIN || errno == EINPROGRESS) {
    throw Error(codes::io_error, "cannot listen on unix:" + path + ": a server is listening there");
  }
  if (errno == ECONNREFUSED) ::unlink(path.c_str());
}

inline void set_no_delay(int fd) {
  // Requests and replies are small frames; Nagle's algorithm would hold them
  // back waiting for delayed acknowledgements.
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace detail

// A listening socket (non-blocking, close-on-exec). For unix: its socket file
// is removed again when it is closed, if that file is still the one it bound.
class ListeningSocket {
 public:
  ListeningSocket() = default;
  ListeningSocket(ListeningSocket&&) noexcept = default;
  ListeningSocket& operator=(ListeningSocket&& other) noexcept {
    if (this != &other) {
      remove_socket_file();
      fd_ = std::move(other.fd_);
      address_ = std::move(other.address_);
      inode_ = std::exchange(other.inode_, Inode{});
    }
    return *this;
  }
  ~ListeningSocket() { remove_socket_file(); }

  int fd() const { return fd_.get(); }
  // The address actually bound: port 0 is replaced by the port the system chose.
  const Address& address() const { return address_; }

  static ListeningSocket open(const Address& address, int backlog = SOMAXCONN) {
    ListeningSocket socket;
    if (address.is_unix()) {
      detail::remove_stale_unix_socket(address.path);
      socket.fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!socket.fd_) throw detail::errno_error("socket");
      socklen_t length;
      sockaddr_un un = detail::unix_sockaddr(address.path, length);
      if (::bind(socket.fd_.get(), reinterpret_cast<sockaddr*>(&un), length) < 0) {
        throw detail::errno_error("cannot listen on " + address.to_string());
      }
      struct stat st {};
      if (address.path[0] != '@' && ::stat(address.path.c_str(), &st) == 0) {
        socket.inode_ = Inode{address.path, st.st_dev, st.st_ino};
      }
    } else {
      detail::AddrinfoList list = detail::resolve_address(address, true);
      int error = 0;
      for (addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
        UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
        if (!fd) {
          error = errno;
          continue;
        }
        int one = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
          socket.fd_ = std::move(fd);
          break;
        }
        error = errno;
      }
      if (!socket.fd_) throw detail::errno_error("cannot listen on " + address.to_string(), error);
    }
    if (::listen(socket.fd_.get(), backlog) < 0) {
      throw detail::errno_error("cannot listen on " + address.to_string());
    }
    socket.address_ = local_address(socket.fd_.get()).with_tls(address.tls);
    return socket;
  }

 private:
  struct Inode {
    std::string path;
    dev_t device = 0;
    ino_t inode = 0;
  };

  void remove_socket_file() {
    if (inode_.path.empty() || !fd_) return;
    struct stat st {};
    if (::lstat(inode_.path.c_str(), &st) == 0 && st.st_dev == inode_.device && st.st_ino == inode_.inode) {
      ::unlink(inode_.path.c_str());
    }
    inode_ = Inode{};
  }

  UniqueFd fd_;
  Address address_;
  Inode inode_;
};

inline ListeningSocket listen_on(const Address& address, int backlog = SOMAXCONN) {
  return ListeningSocket::open(address, backlog);
}

// Connects and returns a blocking, close-on-exec socket (TCP_NODELAY for
// tcp). The timeout covers the connection attempts, not name resolution:
// getaddrinfo cannot be bounded. Throws Error(LEVEL_IO_ERROR).
inline UniqueFd connect_to(const Address& address,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  const std::string where = "cannot connect to " + address.to_string();

  if (address.is_unix()) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw detail::errno_error("socket");
    // A blocking unix connect waits while the server's backlog is full, and
    // honours SO_SNDTIMEO while it waits.
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    timeval tv{static_cast<time_t>(micros / 1000000), static_cast<suseconds_t>(micros % 1000000)};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    socklen_t length;
    sockaddr_un un = detail::unix_sockaddr(address.path, length);
    int result;
    do {
      result = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&un), length);
    } while (result < 0 && errno == EINTR);
    if (result < 0) {
      if (errno == EAGAIN || errno == EINPROGRESS) throw Error(codes::io_error, where + ": timed out");
      throw detail::errno_error(where);
    }
    tv = timeval{};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
  }

  detail::AddrinfoList list = detail::resolve_address(address, false);
  int error = ETIMEDOUT;
  for (addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd) {
      error = errno;
      continue;
    }
    int result = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
    if (result < 0 && errno == EINPROGRESS) {
      for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
          errno = ETIMEDOUT;
          break;
        }
        pollfd pfd{fd.get(), POLLOUT, 0};
        int ready = ::poll(&pfd, 1, static_cast<int>(left));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
          errno = ready == 0 ? ETIMEDOUT : errno;
          break;
        }
        int so_error = 0;
        socklen_t length = sizeof so_error;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &length);
        result = so_error == 0 ? 0 : -1;
        errno = so_error;
        break;
      }
    }
    if (result == 0) {
      int flags = ::fcntl(fd.get(), F_GETFL);
      ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
      detail::set_no_delay(fd.get());
      return fd;
    }
    error = errno;
    if (error == ETIMEDOUT) break;
  }
  if (error == ETIMEDOUT) throw Error(codes::io_error, where + ": timed out");
  throw detail::errno_error(where, error);
}

inline UniqueFd connect_to(std::string_view address,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return connect_to(parse_address(address), timeout);
}

MANY_LEVEL_NAMESPACE_END
