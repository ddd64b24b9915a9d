// Fuzz target: the frame decoder and the message codec, as a host and a guest
// meet them. Any bytes are fed to a FrameDecoder in two chunks (split where
// the input's first byte says); every payload is decoded as a guest's and as
// a host's message, and one that decodes is encoded again and must decode to
// a frame of the same tag. Nothing may crash, hang or read out of bounds; a
// malformed stream may only throw Error (LEVEL_PROTOCOL_ERROR).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "many_level/error.hpp"
#include "many_level/protocol/codec.hpp"
#include "many_level/protocol/framing.hpp"

namespace {

using namespace many_level;

template <class Variant>
void decode_and_reencode(std::string_view payload) {
  Variant message;
  if (protocol::decode_payload(payload, message) != protocol::DecodeStatus::ok) return;
  std::string frame;
  std::visit([&](const auto& decoded) { protocol::encode(frame, decoded); }, message);
  // The encoding is a whole frame: it decodes again, to the same tag.
  protocol::FrameDecoder decoder;
  int frames = 0;
  decoder.feed(frame.data(), frame.size(), [&](std::string_view again) {
    ++frames;
    Variant twice;
    if (again.empty() || again[0] != payload[0] || protocol::decode_payload(again, twice) != protocol::DecodeStatus::ok) {
      __builtin_trap();
    }
  });
  if (frames != 1) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t split = data[0] % size;
  const char* bytes = reinterpret_cast<const char*>(data) + 1;
  const size_t length = size - 1;
  protocol::FrameDecoder decoder(1 << 20);
  auto on_frame = [](std::string_view payload) {
    decode_and_reencode<protocol::GuestMessage>(payload);
    decode_and_reencode<protocol::HostMessage>(payload);
  };
  try {
    decoder.feed(bytes, std::min(split, length), on_frame);
    decoder.feed(bytes + std::min(split, length), length - std::min(split, length), on_frame);
  } catch (const Error& e) {
    if (!e.is(codes::protocol_error)) __builtin_trap();
  }
  return 0;
}
