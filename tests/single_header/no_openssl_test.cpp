// Built with MANY_LEVEL_NO_OPENSSL, against the single header and against the
// split ones: nothing may include OpenSSL's headers (poison_openssl/, first
// on the include path, stops the build if anything does; without them there
// can be no TLS), and everything else is still there.

#ifndef MANY_LEVEL_NO_OPENSSL
#error "build this unit with MANY_LEVEL_NO_OPENSSL defined"
#endif

#include <gtest/gtest.h>

#include "many_level.hpp"

namespace ml = many_level;

namespace {

TEST(NoOpenssl, KeepsEverythingElse) {
  ml::MemoryDatabase db;
  db.put("k", "v");
  EXPECT_EQ(db.get("k"), "v");
  ml::Guest guest;
  EXPECT_NE(guest.connect(), nullptr);
  EXPECT_EQ(ml::parse_address("tcp://127.0.0.1:1").port, 1);
}

}  // namespace
