// Whether the host of a guest's stream speaks the extension (docs/PROTOCOL.md,
// "Negotiation"). The guest says Hello first on every stream and goes on at
// once; the host's first answer tells: a HelloReply (a C++ host), or a base
// reply (the Node reference, which ignores Hello). Order is the signal, so
// nothing waits and nothing times out.
//
// Negotiation is only the state of one stream; GuestCore guards it with its
// lock and acts on what it reports (sends the probe, fails what waits).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "../version.hpp"
#include "../protocol/messages.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

enum class HostExtension {
  unknown,      // the host has not answered anything on this stream yet
  available,    // it answered Hello: a C++ host
  unavailable,  // a base reply came first (the Node reference), or the guest's extension is off
};

inline const char* to_string(HostExtension extension) {
  switch (extension) {
    case HostExtension::unknown: return "unknown";
    case HostExtension::available: return "available";
    case HostExtension::unavailable: return "unavailable";
  }
  return "unknown";
}

// The features of the extension's version 1, as Hello and HelloReply name them.
namespace features {
inline constexpr const char* has = "has";
inline constexpr const char* snapshots = "snapshots";
inline constexpr const char* watch = "watch";
inline constexpr const char* stats = "stats";
}  // namespace features

class Negotiation {
 public:
  static constexpr uint32_t version = 1;

  explicit Negotiation(bool enabled)
      : enabled_(enabled), state_(enabled ? HostExtension::unknown : HostExtension::unavailable) {}

  bool enabled() const { return enabled_; }

  // A new stream: nothing is known of its host.
  void begin_stream() {
    set(enabled_ ? HostExtension::unknown : HostExtension::unavailable);
    features_.clear();
    refused_.clear();
    grant_.clear();
    confined_ = false;
    probed_ = false;
    probe_.reset();
  }

  // The first frame of every stream (only when enabled), with the guest's
  // token for a host that authenticates.
  static protocol::Hello hello(std::optional<std::string> token = std::nullopt) {
    protocol::Hello hello;
    hello.version = version;
    hello.features = {features::has, features::snapshots, features::watch, features::stats};
    hello.token = std::move(token);
    return hello;
  }

  // A HelloReply; true when it settled the stream. One that comes after a
  // base reply is ignored: the stream was settled by then.
  bool on_hello_reply(const protocol::HelloReply& reply) {
    if (state() != HostExtension::unknown) return false;
    if (reply.error && !reply.error->empty()) {
      refused_ = *reply.error;
      set(HostExtension::unavailable);
      return true;
    }
    features_ = reply.features;
    grant_ = reply.grant.value_or("");
    confined_ = reply.confined;
    set(HostExtension::available);
    return true;
  }

  // What the host's HelloReply said this guest may do: "read-only",
  // "read-write", or "" (a host that did not say: a Node host, or none yet).
  const std::string& grant() const { return grant_; }

  // Set when the host's HelloReply refused this guest (a host that
  // authenticates, and no token it accepts): its code, explained.
  std::optional<Error> refusal() const {
    if (refused_.empty()) return std::nullopt;
    std::string why = explain(refused_);
    return Error(refused_, why.empty() ? "the host refused this guest" : why);
  }

  // A message that says why the host refused a request with `code`, from
  // what it said in its HelloReply; "" when there is nothing to add.
  std::string explain(std::string_view code) const {
    if (code == codes::readonly && grant_ == "read-only") {
      return "this guest's grant on the host is read-only: nothing was written";
    }
    if (code == codes::unauthenticated) {
      return "the host requires a token it accepts (GuestOptions::token; many-level: --token-file or "
             "MANY_LEVEL_TOKEN) and refused this guest";
    }
    if (code == codes::access_denied) {
      return std::string("this guest's grant does not allow it") + (confined_ ? " (it is confined to a sublevel)" : "");
    }
    return {};
  }

  // A base reply; true when it settled the stream: no HelloReply came
  // before it, so the host does not know the extension.
  bool on_base_reply() {
    if (state() != HostExtension::unknown) return false;
    set(HostExtension::unavailable);
    return true;
  }

  // Readable without the core's lock (the reply path checks it per frame).
  HostExtension state() const { return state_.load(std::memory_order_acquire); }

  std::vector<std::string> features() const {
    return state() == HostExtension::available ? features_ : std::vector<std::string>{};
  }

  bool offers(std::string_view feature) const {
    return state() == HostExtension::available &&
           std::find(features_.begin(), features_.end(), feature) != features_.end();
  }

  // Why a request for `feature` must fail at once; nullopt: send it (while
  // unknown, the host's answer or the probe's will settle it).
  std::optional<Error> refusal(std::string_view feature) const {
    switch (state()) {
      case HostExtension::unknown: return std::nullopt;
      case HostExtension::available:
        if (offers(feature)) return std::nullopt;
        return Error(codes::not_supported, missing_feature(feature));
      case HostExtension::unavailable: return Error(codes::not_supported, unavailable_reason());
    }
    return std::nullopt;
  }

  // What the guest says to the extension requests still waiting when the
  // stream turns out to be base.
  std::string unavailable_reason() const {
    if (!enabled_) return "the guest's extension is off (GuestOptions::extension)";
    if (!refused_.empty()) return "the host refused the extension (" + refused_ + ")";
    return "the host has no extension (a Node many-level host?)";
  }

  // ---- the probe: an empty GetMany behind the first extension request of a
  // stream whose host has not answered yet, so that a reference host (which
  // ignores extension requests) surely answers something.
  bool needs_probe() const { return state() == HostExtension::unknown && !probed_; }
  void probe_sent(uint32_t id) {
    probed_ = true;
    probe_ = id;
  }
  bool probe_in_flight(uint32_t id) const { return probe_ && *probe_ == id; }
  // The probe's reply, which no caller sees.
  bool take_probe_reply(uint32_t id) {
    if (!probe_in_flight(id)) return false;
    probe_.reset();
    return true;
  }

 private:
  static std::string missing_feature(std::string_view feature) {
    if (feature == features::snapshots) return "the host's database has no explicit snapshots";
    if (feature == features::watch) return "the host's database has no change feed";
    return "the host does not offer '" + std::string(feature) + "'";
  }

  void set(HostExtension state) { state_.store(state, std::memory_order_release); }

  const bool enabled_;
  std::atomic<HostExtension> state_;
  std::vector<std::string> features_;
  std::string refused_;  // HelloReply.error
  std::string grant_;    // HelloReply.grant
  bool confined_ = false;
  bool probed_ = false;  // the probe went out on this stream
  std::optional<uint32_t> probe_;  // its request id, until answered
};

MANY_LEVEL_NAMESPACE_END
