// Options of a guest, as many-level's ManyLevelGuest takes them, plus the
// frame limit the reference lacks.
#pragma once

#include <cstddef>

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
};

MANY_LEVEL_NAMESPACE_END
