// Request and iterator ids for one guest. Ids start at 1 and wrap after
// 0xffffffff like the reference's, but never hand out an id still in use
// (the reference does not check, so a long-lived guest could mix up replies).
#pragma once

#include <cstdint>

#include "../error.hpp"
#include "../version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

class IdAllocator {
 public:
  // `last` is the id handed out last (0: none yet); tests start near the wrap.
  explicit IdAllocator(uint32_t last = 0) : last_(last) {}

  // `in_use(id)` tells whether an id is still taken.
  template <typename InUse>
  uint32_t next(InUse&& in_use) {
    for (uint64_t tries = 0; tries < UINT32_MAX; ++tries) {
      last_ = last_ == UINT32_MAX ? 1 : last_ + 1;
      if (!in_use(last_)) return last_;
    }
    throw Error(codes::not_supported, "every request id is in use");
  }

  // Restarts at 1, as the reference does once nothing is pending.
  void reset() { last_ = 0; }

 private:
  uint32_t last_ = 0;
};

MANY_LEVEL_NAMESPACE_END
