// Fuzz target: what users and peers give as text: addresses (parse_address,
// and its to_string() parsing back to the same address), and keys and values
// through every encoding a guest may name (utf8, hex, base64, json, buffer):
// decode, then encode, must not crash whatever the bytes; an encoding that
// refuses the input says so with an Error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "many_level/encoding.hpp"
#include "many_level/error.hpp"
#include "many_level/transport/address.hpp"

using namespace many_level;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const Address address = parse_address(text);
    const Address again = parse_address(address.to_string());
    if (again.to_string() != address.to_string()) __builtin_trap();
  } catch (const Error&) {
  }
  // Bytes from a peer decoded for the user, and the user's text encoded for
  // the wire. Codecs may throw (bad hex, bad JSON), never crash.
  for (const char* name : {"utf8", "hex", "base64", "json", "buffer"}) {
    const auto encoding = find_encoding(name);
    if (!encoding) __builtin_trap();
    try {
      (void)encoding->encode(encoding->decode(text));
    } catch (const std::exception&) {
    }
    try {
      (void)encoding->decode(encoding->encode(text));
    } catch (const std::exception&) {
    }
  }
  return 0;
}
