// TLS for the transports: the one header to include. TlsContext says how an
// endpoint authenticates (tls_context.hpp); TlsSession wraps any session in
// TLS (tls_session.hpp); here are the two places sessions are made:
//
//   // Host: listen_tls() wraps every session of the listener.
//   auto tls = TlsContext::server({"host.pem", "host.key"});
//   Address bound = listen_tls(loop, "tls://0.0.0.0:9443", tls,
//                              [&](const ConnectionInfo& info) { return host.create_session(info); });
//
//   // Guest: a Connector to a tls:// address wraps each stream it makes.
//   ConnectorOptions options;
//   options.wrap_session = tls_wrapper(TlsContext::client({/*ca_file=*/"ca.pem"}));
//   Connector connector(guest, "tls://db.example.com:9443", options);
//
// Anything else (an fd pump, an iostream, a memory pair) pumps a TlsSession
// like any session.
#pragma once

#include <functional>
#include <memory>
#include <string_view>
#include <utility>

#include "../error.hpp"
#include "../version.hpp"
#include "address.hpp"
#include "event_loop.hpp"
#include "session.hpp"
#include "tls_context.hpp"
#include "tls_session.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// A session factory whose sessions are `factory`'s, wrapped in TLS (a server
// context). A connection `factory` refuses stays refused.
inline EventLoop::SessionFactory tls_sessions(TlsContext context, EventLoop::SessionFactory factory) {
  if (!context.is_server()) throw Error(codes::invalid_argument, "tls_sessions needs a server TLS context");
  return [context = std::move(context), factory = std::move(factory)](
             const ConnectionInfo& info) -> std::shared_ptr<Session> {
    std::shared_ptr<Session> inner = factory(info);
    if (!inner) return nullptr;
    return std::make_shared<TlsSession>(context, std::move(inner));
  };
}

// EventLoop::listen, with TLS on every connection. Returns the bound address
// as tls:// (listen on port 0 and read the port from it); `address` may say
// tcp:// or tls://.
inline Address listen_tls(EventLoop& loop, const Address& address, TlsContext context,
                          EventLoop::SessionFactory factory, int backlog = SOMAXCONN) {
  if (!address.is_tcp()) throw Error(codes::invalid_argument, "TLS needs a TCP address, not " + address.to_string());
  return loop.listen_secured(address.with_tls(), tls_sessions(std::move(context), std::move(factory)), backlog);
}

inline Address listen_tls(EventLoop& loop, std::string_view address, TlsContext context,
                          EventLoop::SessionFactory factory, int backlog = SOMAXCONN) {
  return listen_tls(loop, parse_address(address), std::move(context), std::move(factory), backlog);
}

// Wraps a guest's stream in TLS (a client context), checking the host's
// certificate against the context's server name or else the host of the
// address: what ConnectorOptions::wrap_session takes.
using SessionWrapper = std::function<std::shared_ptr<Session>(std::shared_ptr<Session>, const Address&)>;

inline SessionWrapper tls_wrapper(TlsContext context) {
  if (context.is_server()) throw Error(codes::invalid_argument, "tls_wrapper needs a client TLS context");
  return [context = std::move(context)](std::shared_ptr<Session> inner,
                                        const Address& address) -> std::shared_ptr<Session> {
    return std::make_shared<TlsSession>(context, std::move(inner), address.host);
  };
}

MANY_LEVEL_NAMESPACE_END
