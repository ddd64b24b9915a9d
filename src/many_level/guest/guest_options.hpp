// Options of a guest, as many-level's ManyLevelGuest takes them, plus the
// frame limit the reference lacks and the switch of the extension.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "../options.hpp"
#include "../version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

struct GuestOptions {
  // Keep unanswered requests and open iterators when the stream closes and
  // resume them on the next stream. Iterators then cannot promise snapshots.
  bool retry = false;

  // Default key and value encodings, as for any database.
  DatabaseOptions encodings;

  // A reply frame longer than this drops the stream (64 MiB by default).
  size_t max_frame_length = size_t{64} << 20;

  // Speak the extension (docs/PROTOCOL.md) with hosts that know it: say
  // Hello first on every stream. false: never send Hello, and behave exactly
  // as the reference guest (snapshot(), watch() and host_stats() then fail
  // with LEVEL_NOT_SUPPORTED).
  bool extension = true;

  // The token a host that authenticates asks for (docs/SECURITY.md), sent in
  // the Hello of every stream; needs the extension. Read it from a file or
  // the environment (the many-level program: --token-file, MANY_LEVEL_TOKEN),
  // never from a command line, which other users of the machine can see.
  std::optional<std::string> token;
};

MANY_LEVEL_NAMESPACE_END
