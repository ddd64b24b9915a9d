// The TLS options of the many-level program, for serve and the guest
// commands alike: parsed and checked here (usage errors before anything
// connects), turned into TLS contexts here (a file that cannot be used is an
// Error naming it, exit 1).
//
//   guest side (--connect tls://, serve --upstream tls://):
//     --tls-ca FILE  --tls-cert FILE --tls-key FILE  --tls-insecure
//   host side (serve --listen tls://):
//     --tls-cert FILE --tls-key FILE  --tls-client-ca FILE
//
// In serve, --tls-cert/--tls-key are the process's one certificate: shown to
// guests on tls:// listeners and offered to a tls:// upstream that asks for one.
#pragma once

#include <chrono>
#include <atomic>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "args.hpp"
#include "many_level.hpp"

namespace cli {

inline const std::set<std::string> tls_guest_value_options = {"tls-ca", "tls-cert", "tls-key"};
inline const std::set<std::string> tls_guest_flags = {"tls-insecure"};
inline const std::set<std::string> tls_serve_value_options = {"tls-ca", "tls-cert", "tls-key", "tls-client-ca"};

struct TlsFlags {
  std::string ca, cert, key, client_ca;
  bool insecure = false;

  static TlsFlags from(const Args& args) {
    TlsFlags flags;
    flags.ca = args.value_or("tls-ca", "");
    flags.cert = args.value_or("tls-cert", "");
    flags.key = args.value_or("tls-key", "");
    flags.client_ca = args.value_or("tls-client-ca", "");
    flags.insecure = args.has("tls-insecure");
    if (flags.cert.empty() != flags.key.empty()) throw UsageError("--tls-cert and --tls-key go together");
    if (flags.insecure && !flags.ca.empty()) throw UsageError("--tls-insecure and --tls-ca exclude each other");
    return flags;
  }

  // Usage errors of a guest connecting to `address` (given as --`option`).
  void check_guest(const many_level::Address& address, const std::string& option) const {
    if (address.tls) return check_build();
    if (!ca.empty() || !cert.empty() || insecure) {
      throw UsageError("--tls-ca, --tls-cert, --tls-key and --tls-insecure need a tls:// --" + option);
    }
  }

  // Usage errors of serve: a tls:// listener needs the certificate, and each
  // --tls-* option something that uses it.
  void check_serve(const std::vector<std::string>& listen, const std::optional<std::string>& upstream) const {
    bool tls_listen = false;
    for (const auto& address : listen) tls_listen |= many_level::parse_address(address).tls;
    const bool tls_upstream = upstream && many_level::parse_address(*upstream).tls;
    if (tls_listen || tls_upstream) check_build();
    if (tls_listen && cert.empty()) throw UsageError("a tls:// --listen needs --tls-cert and --tls-key");
    if (!client_ca.empty() && !tls_listen) throw UsageError("--tls-client-ca needs a tls:// --listen");
    if (!cert.empty() && !tls_listen && !tls_upstream) {
      throw UsageError("--tls-cert and --tls-key need a tls:// --listen (or a tls:// --upstream)");
    }
    if ((!ca.empty() || insecure) && !tls_upstream) {
      throw UsageError("--tls-ca and --tls-insecure need a tls:// --upstream");
    }
  }

  static void check_build() {
#ifdef MANY_LEVEL_NO_OPENSSL
    throw UsageError("this build has no TLS (MANY_LEVEL_NO_OPENSSL): tls:// addresses are not available");
#endif
  }

#ifndef MANY_LEVEL_NO_OPENSSL
  // Set when a host asked this process for a client certificate it has none
  // of: the host's refusal may be cut off by the connection's end, this not.
  static std::atomic<bool>& certificate_requested() {
    static std::atomic<bool> requested{false};
    return requested;
  }

  // What a guest wraps its stream in for a tls:// address (ConnectorOptions::wrap_session).
  many_level::SessionWrapper guest_wrapper() const {
    if (insecure) {
      std::cerr << "many-level: --tls-insecure: the host's certificate is NOT verified: the connection is "
                   "encrypted, but anyone on the path can pose as the host\n";
    }
    many_level::TlsClientOptions options;
    options.ca_file = ca;
    options.certificate_file = cert;
    options.private_key_file = key;
    options.insecure = insecure;
    auto context = many_level::TlsContext::client(options);
    if (cert.empty()) {
      SSL_CTX_set_client_cert_cb(context.native_handle(), [](SSL*, X509**, EVP_PKEY**) {
        certificate_requested().store(true);
        return 0;  // none: the handshake goes on, the host decides
      });
    }
    return many_level::tls_wrapper(context);
  }

  many_level::TlsContext server_context() const {
    many_level::TlsServerOptions options;
    options.certificate_chain_file = cert;
    options.private_key_file = key;
    options.client_ca_file = client_ca;
    return many_level::TlsContext::server(options);
  }
#endif
};

// serve's listeners: tls:// ones with the TLS context, made (its files read)
// once by load(), before the database opens.
class TlsListeners {
 public:
  void load(const TlsFlags& flags, const std::vector<std::string>& listen) {
#ifndef MANY_LEVEL_NO_OPENSSL
    for (const auto& address : listen) {
      if (many_level::parse_address(address).tls && !context_) context_ = flags.server_context();
    }
#else
    (void)flags, (void)listen;
#endif
  }

  many_level::Address listen(many_level::EventLoop& loop, const std::string& address,
                             many_level::EventLoop::SessionFactory factory) const {
#ifndef MANY_LEVEL_NO_OPENSSL
    if (many_level::parse_address(address).tls) return many_level::listen_tls(loop, address, *context_, std::move(factory));
#endif
    return loop.listen(address, std::move(factory));
  }

 private:
#ifndef MANY_LEVEL_NO_OPENSSL
  std::optional<many_level::TlsContext> context_;
#endif
};

// What wraps a guest's stream in TLS (ConnectorOptions::wrap_session), its
// files read now; empty in a build without TLS.
inline std::function<std::shared_ptr<many_level::Session>(std::shared_ptr<many_level::Session>,
                                                          const many_level::Address&)>
guest_stream_wrapper(const TlsFlags& flags) {
#ifndef MANY_LEVEL_NO_OPENSSL
  return flags.guest_wrapper();
#else
  (void)flags;
  return nullptr;
#endif
}

// A guest's stream to `address`: the guest's session itself, or over tls://
// that session wrapped in TLS.
inline std::shared_ptr<many_level::Session> guest_stream(const TlsFlags& flags, const many_level::Address& address,
                                                         std::shared_ptr<many_level::Session> session) {
  if (!address.tls) return session;
  auto wrap = guest_stream_wrapper(flags);
  if (!wrap) throw many_level::Error(many_level::codes::not_supported, "this build has no TLS");
  return wrap(std::move(session), address);
}

// Why a guest's TLS stream ended on its own (before the command was done),
// for stderr: a TLS failure, or a host that cut the connection (which may
// cut off its TLS alert too), with a hint if it asked for a certificate.
inline std::string tls_end_reason(std::string reason) {
  const std::string prefix = "session failed: ";
  if (reason.compare(0, prefix.size(), prefix) == 0) reason.erase(0, prefix.size());
  bool requested = false;
#ifndef MANY_LEVEL_NO_OPENSSL
  requested = TlsFlags::certificate_requested().load();
#endif
  if (requested) reason += " (the host asked for a client certificate, and this guest has none: --tls-cert, --tls-key)";
  return reason;
}

// Whether `stream` is a TLS session whose handshake is done (true without TLS).
inline bool tls_handshake_done(many_level::Session& stream) {
#ifndef MANY_LEVEL_NO_OPENSSL
  if (auto* tls = dynamic_cast<many_level::TlsSession*>(&stream)) return tls->handshake_done();
#else
  (void)stream;
#endif
  return true;
}

}  // namespace cli
