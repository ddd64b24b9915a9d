// Length-prefixed framing of the many-level stream, sans I/O: a frame is a
// varint payload length, then the payload. FrameDecoder turns chunks of any
// size into payloads; append_length_prefix writes the other direction.
#pragma once

#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "../error.hpp"
#include "../version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN
namespace protocol {

// Appends the varint that precedes a payload of `length` bytes.
inline void append_length_prefix(std::string& out, std::uint32_t length) {
  using google::protobuf::io::CodedOutputStream;
  const std::size_t start = out.size();
  out.resize(start + CodedOutputStream::VarintSize32(length));
  CodedOutputStream::WriteVarint32ToArray(length, reinterpret_cast<std::uint8_t*>(&out[start]));
}

// Splits a byte stream into payloads. The reference sets no limit on a frame's
// length, so one bad prefix would make it allocate anything; this decoder
// checks the length against max_frame_length as soon as its varint is
// complete, before it buffers or allocates anything for the frame.
//
// Payloads that arrive whole inside one chunk are handed out as views into
// that chunk, without a copy; only a payload split across chunks is buffered,
// and only as far as its bytes have arrived. Zero-length payloads are skipped,
// as the reference does.
//
// After a protocol error every further feed() throws the same error: the
// stream is out of sync and the connection must close.
class FrameDecoder {
 public:
  static constexpr std::size_t default_max_frame_length = std::size_t{64} << 20;

  // The limit counts payload bytes (tag byte and message), not the prefix.
  explicit FrameDecoder(std::size_t max_frame_length = default_max_frame_length)
      : max_frame_length_(max_frame_length) {}

  // Feeds a chunk and calls on_frame(std::string_view payload) for each
  // complete payload, in order. A view is valid only during its call. If
  // on_frame throws, the frames after it in this chunk are dropped, but the
  // decoder stays consistent and accepts the next chunk. Throws Error
  // (LEVEL_PROTOCOL_ERROR) on a length over the limit or a malformed varint.
  template <class OnFrame>
  void feed(const char* data, std::size_t size, OnFrame&& on_frame) {
    if (error_) throw *error_;
    const char* const end = data + size;
    while (data != end) {
      if (!have_length_) {
        if (!read_length_byte(static_cast<std::uint8_t>(*data++))) continue;
        if (length_ == 0) {
          reset_length();
          continue;
        }
        // A payload already whole in this chunk is not copied.
        if (static_cast<std::size_t>(end - data) >= length_) {
          std::string_view payload(data, length_);
          data += length_;
          reset_length();
          on_frame(payload);
          continue;
        }
      }
      const std::size_t take =
          std::min(static_cast<std::size_t>(end - data), length_ - buffer_.size());
      buffer_.append(data, take);
      data += take;
      if (buffer_.size() == length_) {
        // Moved out first, so a throwing on_frame leaves the decoder ready.
        std::string payload = std::move(buffer_);
        buffer_ = std::string();
        reset_length();
        on_frame(std::string_view(payload));
        recycle(std::move(payload));
      }
    }
  }

  template <class OnFrame>
  void feed(std::string_view chunk, OnFrame&& on_frame) {
    feed(chunk.data(), chunk.size(), std::forward<OnFrame>(on_frame));
  }

  std::size_t max_frame_length() const noexcept { return max_frame_length_; }
  bool failed() const noexcept { return error_.has_value(); }
  const std::optional<Error>& error() const noexcept { return error_; }

  // Bytes of a partial frame held back: the length varint and any payload.
  std::size_t buffered() const noexcept { return length_bytes_ + buffer_.size(); }

  // True between frames, i.e. the stream may end here without losing data.
  bool idle() const noexcept { return length_bytes_ == 0 && !have_length_; }

 private:
  // A buffer this large or smaller is kept for the next split frame; a larger
  // one is released, so one big frame does not pin its memory for good.
  static constexpr std::size_t kKeptCapacity = std::size_t{1} << 20;

  // Consumes one byte of the length varint; true once the length is known.
  bool read_length_byte(std::uint8_t byte) {
    ++length_bytes_;
    const std::uint64_t bits = byte & 0x7f;
    if (length_shift_ >= 32 ? bits != 0 : (bits << length_shift_) > UINT32_MAX) {
      fail("frame length varint exceeds 32 bits");
    }
    accumulated_ |= bits << length_shift_;
    length_shift_ += 7;
    if (byte & 0x80) {
      if (length_bytes_ >= 10) fail("frame length varint longer than 10 bytes");
      return false;
    }
    if (accumulated_ > max_frame_length_) {
      fail("frame length " + std::to_string(accumulated_) + " exceeds the limit of " +
           std::to_string(max_frame_length_) + " bytes");
    }
    length_ = static_cast<std::size_t>(accumulated_);
    have_length_ = true;
    return true;
  }

  void reset_length() noexcept {
    accumulated_ = 0;
    length_shift_ = 0;
    length_bytes_ = 0;
    length_ = 0;
    have_length_ = false;
  }

  void recycle(std::string&& spent) {
    if (buffer_.capacity() == 0 && spent.capacity() <= kKeptCapacity) {
      spent.clear();
      buffer_ = std::move(spent);
    }
  }

  [[noreturn]] void fail(const std::string& message) {
    error_.emplace(codes::protocol_error, message);
    throw *error_;
  }

  std::size_t max_frame_length_;
  std::uint64_t accumulated_ = 0;
  unsigned length_shift_ = 0;
  std::size_t length_bytes_ = 0;
  std::size_t length_ = 0;
  bool have_length_ = false;
  std::string buffer_;
  std::optional<Error> error_;
};

}  // namespace protocol
MANY_LEVEL_NAMESPACE_END
