// What a TLS endpoint is configured with, made once and shared by all its
// sessions: a host's certificate chain and key (and, to require client
// certificates, the CAs that sign them), or a guest's trusted CAs (the
// system's by default), its optional client certificate and the name it
// expects the host to prove. Verification is on unless `insecure` says
// otherwise, which is loud about it. TLS 1.2 at least; no renegotiation.
//
// OpenSSL (1.1.1 or newer) is optional: define MANY_LEVEL_NO_OPENSSL (CMake:
// MANY_LEVEL_WITH_OPENSSL=OFF) to build without it, and without TLS.
#pragma once

#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "../error.hpp"
#include "../version.hpp"
#include "tls_deadlines.hpp"

#if OPENSSL_VERSION_NUMBER < 0x10101000L
#error "many-level's TLS needs OpenSSL 1.1.1 or newer (or define MANY_LEVEL_NO_OPENSSL)"
#endif

MANY_LEVEL_NAMESPACE_BEGIN

struct TlsServerOptions {
  // PEM: the host's certificate first, then any intermediates.
  std::string certificate_chain_file;
  std::string private_key_file;  // PEM, unencrypted
  // Non-empty: every client must present a certificate signed by one of the
  // CAs in this PEM file, or its handshake fails.
  std::string client_ca_file;
  // A peer that has not finished its handshake by then is disconnected.
  std::chrono::milliseconds handshake_timeout{10000};
};

struct TlsClientOptions {
  // PEM bundle of the CAs to trust; empty: the system's (OpenSSL's default paths).
  std::string ca_file;
  // A client certificate, for hosts that require one (both or neither).
  std::string certificate_file;
  std::string private_key_file;
  // The name the host's certificate must carry (sent as SNI too, unless it
  // is an IP address). Empty: the host of the address connected to.
  std::string server_name;
  // No verification at all: the traffic is encrypted, but anyone on the path
  // can pose as the host. For tests; says so on stderr when made.
  bool insecure = false;
  std::chrono::milliseconds handshake_timeout{10000};
};

namespace detail {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

// Drains this thread's OpenSSL error queue into one line: the reasons,
// oldest first, without repeats ("certificate verify failed"); `fallback`
// when the queue was empty.
inline std::string take_openssl_errors(const char* fallback = "unknown error") {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    std::string reason;
    if (const char* known = ERR_reason_error_string(code)) {
      reason = known;
    } else {
      char buffer[256];
      ERR_error_string_n(code, buffer, sizeof buffer);
      reason = buffer;
    }
    if (text.find(reason) != std::string::npos) continue;
    if (!text.empty()) text += ": ";
    text += reason;
  }
  return text.empty() ? fallback : text;
}

// What every context and the sessions made from it share.
struct TlsContextState {
  SslCtxPtr ctx;
  bool server = false;
  bool insecure = false;
  std::string server_name;
  std::chrono::milliseconds handshake_timeout{10000};
  TlsDeadlines deadlines;
};

[[noreturn]] inline void tls_setup_failed(const std::string& what) {
  throw Error(codes::invalid_argument, what + ": " + take_openssl_errors());
}

inline std::shared_ptr<TlsContextState> new_tls_state(bool server, std::chrono::milliseconds handshake_timeout) {
  auto state = std::make_shared<TlsContextState>();
  ERR_clear_error();
  state->ctx.reset(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!state->ctx) tls_setup_failed("cannot make a TLS context");
  SSL_CTX* ctx = state->ctx.get();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // An idle connection keeps no 34 KiB of record buffers: a host may hold
  // thousands of them.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  state->server = server;
  state->handshake_timeout = handshake_timeout;
  return state;
}

inline void load_certificate_and_key(SSL_CTX* ctx, const std::string& chain, const std::string& key) {
  if (SSL_CTX_use_certificate_chain_file(ctx, chain.c_str()) != 1) {
    tls_setup_failed("cannot load the TLS certificate chain " + chain);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    tls_setup_failed("cannot load the TLS private key " + key);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    tls_setup_failed("the TLS private key " + key + " does not match the certificate " + chain);
  }
}

}  // namespace detail

// A copyable handle; copies share one configuration. Make one per listener
// or per host connected to, not one per connection.
class TlsContext {
 public:
  // Throws Error(LEVEL_INVALID_ARGUMENT) naming the file that cannot be used.
  static TlsContext server(const TlsServerOptions& options) {
    if (options.certificate_chain_file.empty() || options.private_key_file.empty()) {
      throw Error(codes::invalid_argument, "a TLS server needs a certificate chain file and a private key file");
    }
    auto state = detail::new_tls_state(true, options.handshake_timeout);
    SSL_CTX* ctx = state->ctx.get();
    detail::load_certificate_and_key(ctx, options.certificate_chain_file, options.private_key_file);
    if (!options.client_ca_file.empty()) {
      const char* file = options.client_ca_file.c_str();
      if (SSL_CTX_load_verify_locations(ctx, file, nullptr) != 1) {
        detail::tls_setup_failed("cannot load the client CA file " + options.client_ca_file);
      }
      // The CAs a client is told to pick its certificate from.
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(file);
      if (!names) detail::tls_setup_failed("no CA certificate in " + options.client_ca_file);
      SSL_CTX_set_client_CA_list(ctx, names);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    // Guests never resume sessions: tickets would be work and bytes for nothing.
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return TlsContext(std::move(state));
  }

  static TlsContext client(const TlsClientOptions& options) {
    if (options.certificate_file.empty() != options.private_key_file.empty()) {
      throw Error(codes::invalid_argument, "a TLS client certificate needs its private key, and the reverse");
    }
    auto state = detail::new_tls_state(false, options.handshake_timeout);
    SSL_CTX* ctx = state->ctx.get();
    if (!options.certificate_file.empty()) {
      detail::load_certificate_and_key(ctx, options.certificate_file, options.private_key_file);
    }
    state->insecure = options.insecure;
    state->server_name = options.server_name;
    if (options.insecure) {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
      std::fprintf(stderr,
                   "many-level: WARNING: TLS certificate verification is OFF (insecure): the connection is "
                   "encrypted, but anyone on the path can pose as the host\n");
    } else {
      if (options.ca_file.empty()) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1) detail::tls_setup_failed("cannot load the system's CAs");
      } else if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
        detail::tls_setup_failed("cannot load the CA file " + options.ca_file);
      }
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    return TlsContext(std::move(state));
  }

  bool is_server() const { return state_->server; }
  bool is_insecure() const { return state_->insecure; }
  // The client's configured server name (empty: each address's host).
  const std::string& server_name() const { return state_->server_name; }
  std::chrono::milliseconds handshake_timeout() const { return state_->handshake_timeout; }

  // For settings this class does not cover (ciphers, ALPN, ...): change them
  // before the first session is made.
  SSL_CTX* native_handle() const { return state_->ctx.get(); }

 private:
  explicit TlsContext(std::shared_ptr<detail::TlsContextState> state) : state_(std::move(state)) {}

  friend class TlsSession;
  std::shared_ptr<detail::TlsContextState> state_;
};

MANY_LEVEL_NAMESPACE_END
